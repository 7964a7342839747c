package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// bare returns an unmigrated store on db: its own table prefix on SQLite,
// its own schema on PostgreSQL.
func bare(t *testing.T, db *sql.DB, d sqlstore.Dialect, ns string) *sqlstore.Store {
	t.Helper()
	opt := sqlstore.WithTablePrefix(ns + "_")
	if d == sqlstore.Postgres {
		opt = sqlstore.WithSchema(ns)
	}
	s, err := sqlstore.New(db, d, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// migrationsTable returns the migrations table of a store made by bare.
func migrationsTable(d sqlstore.Dialect, ns string) string {
	if d == sqlstore.Postgres {
		return ns + "." + sqlstore.DefaultTablePrefix + "migrations"
	}
	return ns + "_migrations"
}

func wantVersion(t *testing.T, s *sqlstore.Store, want int) {
	t.Helper()
	if v, err := s.Version(t.Context()); err != nil || v != want {
		t.Errorf("Version = %d, %v; want %d, nil", v, err, want)
	}
}

// countRows returns the number of rows of table.
func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestMigrate(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			var db *sql.DB
			if d == sqlstore.SQLite {
				db, _ = openSQLite(t)
			} else {
				db, _ = openPostgres(t)
			}

			t.Run("TwiceIsNoOp", func(t *testing.T) {
				ns := storetest.Namespace(t)
				s := bare(t, db, d, ns)
				wantVersion(t, s, 0)
				if err := s.CheckSchema(t.Context()); !errors.Is(err, sqlstore.ErrSchemaOutdated) {
					t.Errorf("CheckSchema before Migrate = %v, want %v", err, sqlstore.ErrSchemaOutdated)
				}
				if _, err := s.Get(t.Context(), "x"); err == nil || errors.Is(err, apitoken.ErrNotFound) {
					t.Errorf("Get before Migrate error = %v, want a database error (no table)", err)
				}
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatalf("first Migrate: %v", err)
				}
				_, tok := issue(t, mustIssuer(t, s))
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatalf("second Migrate: %v", err)
				}
				wantVersion(t, s, sqlstore.SchemaVersion)
				if err := s.CheckSchema(t.Context()); err != nil {
					t.Errorf("CheckSchema after Migrate = %v, want nil", err)
				}
				if n := countRows(t, db, migrationsTable(d, ns)); n != sqlstore.SchemaVersion {
					t.Errorf("migrations table after two Migrates has %d rows, want %d", n, sqlstore.SchemaVersion)
				}
				if _, err := s.Get(t.Context(), tok.ID); err != nil {
					t.Errorf("Get(token created between the Migrates): %v", err)
				}
			})

			t.Run("Concurrent", func(t *testing.T) {
				ns := storetest.Namespace(t)
				// Two stores, as two replicas would have; on SQLite each
				// with its own *sql.DB on the file.
				dbs := []*sql.DB{db, db}
				if d == sqlstore.SQLite {
					dbs[1] = reopenSQLite(t, db)
				}
				const n = 4
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					s := bare(t, dbs[i%2], d, ns)
					wg.Go(func() {
						<-start
						errs[i] = s.Migrate(t.Context())
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("Migrate %d of %d concurrent: %v", i+1, n, err)
					}
				}
				wantVersion(t, bare(t, db, d, ns), sqlstore.SchemaVersion)
				if n := countRows(t, db, migrationsTable(d, ns)); n != sqlstore.SchemaVersion {
					t.Errorf("migrations table after concurrent Migrates has %d rows, want %d", n, sqlstore.SchemaVersion)
				}
			})

			t.Run("NewerSchemaRefused", func(t *testing.T) {
				ns := storetest.Namespace(t)
				s := bare(t, db, d, ns)
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
				next := sqlstore.SchemaVersion + 1
				ins := "INSERT INTO " + migrationsTable(d, ns) + " (version, name, applied_at) VALUES (%d, 'from the future', %s)"
				now := "0"
				if d == sqlstore.Postgres {
					now = "now()"
				}
				if _, err := db.ExecContext(t.Context(), fmt.Sprintf(ins, next, now)); err != nil {
					t.Fatalf("record version %d: %v", next, err)
				}
				err := s.Migrate(t.Context())
				if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
					t.Errorf("Migrate on a database at version %d = %v, want %v", next, err, sqlstore.ErrSchemaTooNew)
				} else if !strings.Contains(err.Error(), fmt.Sprint(next)) {
					t.Errorf("Migrate error %q does not name the database's version %d", err, next)
				}
				if err := s.CheckSchema(t.Context()); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
					t.Errorf("CheckSchema on a database at version %d = %v, want %v", next, err, sqlstore.ErrSchemaTooNew)
				}
				wantVersion(t, s, next)
			})
		})
	}
}

func mustIssuer(t *testing.T, s apitoken.Store) *apitoken.Issuer {
	t.Helper()
	iss, _ := services(t, s)
	return iss
}

// reopenSQLite opens a second *sql.DB on the file of db.
func reopenSQLite(t *testing.T, db *sql.DB) *sql.DB {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRowContext(t.Context(), "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatalf("PRAGMA database_list: %v", err)
	}
	other, err := sqlstore.OpenSQLite(t.Context(), file)
	if err != nil {
		t.Fatalf("OpenSQLite(second handle): %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}
