package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
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
				if err := s.CheckSchema(t.Context()); !errors.Is(err, sqlstore.ErrNotMigrated) {
					t.Errorf("CheckSchema before Migrate = %v, want %v", err, sqlstore.ErrNotMigrated)
				}
				if _, err := s.Get(t.Context(), "x"); !errors.Is(err, sqlstore.ErrNotMigrated) {
					t.Errorf("Get before Migrate error = %v, want %v", err, sqlstore.ErrNotMigrated)
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
	other, err := sqlite.OpenDB(t.Context(), file)
	if err != nil {
		t.Fatalf("sqlite.OpenDB(second handle): %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// atVersion1 returns a new database of dialect d and a store on it in a
// namespace of its own, migrated to schema version 1 only.
func atVersion1(t *testing.T, d sqlstore.Dialect) (*sql.DB, *sqlstore.Store, string) {
	t.Helper()
	var db *sql.DB
	if d == sqlstore.SQLite {
		db, _ = openSQLite(t)
	} else {
		db, _ = openPostgres(t)
	}
	ns := storetest.Namespace(t)
	s := bare(t, db, d, ns)
	if err := sqlstore.MigrateTo(t.Context(), s, 1); err != nil {
		t.Fatalf("MigrateTo(1): %v", err)
	}
	wantVersion(t, s, 1)
	return db, s, ns
}

// rawSQL returns what a test needs to write rows by hand into the tables of
// a store made by bare: the tokens and hashes tables, placeholder i, and
// an instant's column value.
func rawSQL(d sqlstore.Dialect, ns string) (tokens, hashes string, ph func(int) string, instant func(time.Time) any) {
	tokens, hashes, ph = `"`+ns+`_tokens"`, `"`+ns+`_hashes"`, func(i int) string { return "?" + strconv.Itoa(i) }
	instant = func(at time.Time) any { return at.UnixMicro() }
	if d == sqlstore.Postgres {
		tokens, hashes = ns+"."+sqlstore.DefaultTablePrefix+"tokens", ns+"."+sqlstore.DefaultTablePrefix+"hashes"
		ph = func(i int) string { return "$" + strconv.Itoa(i) }
		instant = func(at time.Time) any { return at }
	}
	return tokens, hashes, ph, instant
}

// TestMigrateFromVersion1 writes rows in the version 1 layout (no
// issued_at, the owner index without the kind), migrates, and checks that
// the rows read back with IssuedAt backfilled from CreatedAt, that owners
// are told apart by kind, and that the owner index leads with the kind.
func TestMigrateFromVersion1(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			db, s, ns := atVersion1(t, d)

			tokens, hashes, ph, instant := rawSQL(d, ns)
			created := time.Date(2025, 3, 4, 5, 6, 7, 890000, time.UTC)
			type row struct {
				id      string
				kind    apitoken.Kind
				hash    apitoken.Hash
				created time.Time
			}
			user := row{uuid.Must(uuid.NewV7()).String(), apitoken.KindUser, apitoken.Hash{1, 2, 3}, created}
			org := row{uuid.Must(uuid.NewV7()).String(), apitoken.KindOrg, apitoken.Hash{4, 5, 6}, created.Add(time.Hour)}
			insTok := "INSERT INTO " + tokens + " (id, kind, owner_id, org_id, hash, created_at, updated_at, version) VALUES (" +
				ph(1) + ", " + ph(2) + ", '42', '42', " + ph(3) + ", " + ph(4) + ", " + ph(4) + ", 1)"
			insHash := "INSERT INTO " + hashes + " (hash, token_id) VALUES (" + ph(1) + ", " + ph(2) + ")"
			for _, r := range []row{user, org} {
				if _, err := db.ExecContext(ctx, insTok, r.id, int64(r.kind), r.hash[:], instant(r.created)); err != nil {
					t.Fatalf("insert a version 1 row: %v", err)
				}
				if _, err := db.ExecContext(ctx, insHash, r.hash[:], r.id); err != nil {
					t.Fatalf("insert a version 1 hash: %v", err)
				}
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from version 1: %v", err)
			}
			wantVersion(t, s, sqlstore.SchemaVersion)
			for _, r := range []row{user, org} {
				got, err := s.Get(ctx, r.id)
				if err != nil {
					t.Fatalf("Get(%s token written at version 1): %v", r.kind, err)
				}
				if !got.IssuedAt.Equal(r.created) || got.Kind != r.kind || got.OwnerID != "42" {
					t.Errorf("Get(%s token written at version 1) = kind %v, owner %q, IssuedAt %v; want %v, \"42\", CreatedAt %v",
						r.kind, got.Kind, got.OwnerID, got.IssuedAt, r.kind, r.created)
				}
				byHash, err := s.GetByHash(ctx, r.hash)
				if err != nil || !byHash.IssuedAt.Equal(r.created) {
					t.Errorf("GetByHash(%s token written at version 1) = %v, %v; want IssuedAt %v", r.kind, byHash, err, r.created)
				}
			}
			if n, err := s.RevokeAll(ctx, apitoken.UserOwner("42"), created.Add(2*time.Hour)); err != nil || n != 1 {
				t.Errorf("RevokeAll(user 42) after the upgrade = %d, %v; want 1, nil (org 42 is another owner)", n, err)
			}
			if got, err := s.Get(ctx, org.id); err != nil || got.Revoked() {
				t.Errorf("org 42's token after RevokeAll(user 42): %v, %v; want not revoked", got, err)
			}
			p, err := s.List(ctx, apitoken.Filter{Owner: apitoken.OrgOwner("42")})
			if err != nil || len(p.Tokens) != 1 || p.Tokens[0].ID != org.id {
				t.Errorf("List(org 42) after the upgrade = %d tokens, %v; want org 42's one", len(p.Tokens), err)
			}

			var def string
			if d == sqlstore.SQLite {
				err = db.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", ns+"_tokens_owner_idx").Scan(&def)
			} else {
				err = db.QueryRowContext(ctx, "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
					ns, sqlstore.DefaultTablePrefix+"tokens_owner_idx").Scan(&def)
			}
			if err != nil || !strings.Contains(def, "(kind, owner_id, id)") {
				t.Errorf("owner index after the upgrade = %q, %v; want one on (kind, owner_id, id)", def, err)
			}
		})
	}
}
