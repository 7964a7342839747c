package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/sqlstore"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(crashChild(mode)) // a child of TestCrash, not a test run
	}
	code := m.Run()
	testservers.StopPostgres()
	os.Exit(code)
}

// openSQLite opens a new SQLite database file in a temporary directory and
// closes it when the test ends.
func openSQLite(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.db")
	db, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// openPostgres returns a new database on the shared PostgreSQL cluster,
// closed and dropped when the test ends, and its DSN.
func openPostgres(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := testservers.Postgres(t).CreateDatabase(t)
	db, err := sqlstore.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// newStore returns a migrated store on db, closed when the test ends.
func newStore(t testing.TB, db *sql.DB, d sqlstore.Dialect, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(db, d, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}
