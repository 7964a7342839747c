package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/apitoken/apitoken/storetest"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(crashChild(mode)) // a child of TestCrash, not a test run
	}
	code := m.Run()
	testservers.StopPostgres()
	if code == 0 {
		// Every store, database and Validator the tests open is closed.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// openSQLite opens a new SQLite database file in a temporary directory and
// closes it when the test ends.
func openSQLite(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.db")
	db, err := sqlite.OpenDB(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.OpenDB: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// openPostgres returns a new database on the shared PostgreSQL cluster,
// closed and dropped when the test ends, and its DSN.
func openPostgres(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := testservers.Postgres(t).CreateDatabase(t)
	db, err := postgres.OpenDB(t.Context(), dsn)
	if err != nil {
		t.Fatalf("postgres.OpenDB: %v", err)
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

// dialects runs f as a subtest per dialect, each with a fresh migrated
// store (SQLite: a new file; PostgreSQL: a new database on the shared
// cluster) and its *sql.DB.
func dialects(t *testing.T, f func(t *testing.T, s *sqlstore.Store, db *sql.DB)) {
	t.Run("SQLite", func(t *testing.T) {
		db, _ := openSQLite(t)
		f(t, newStore(t, db, sqlstore.SQLite), db)
	})
	t.Run("Postgres", func(t *testing.T) {
		db, _ := openPostgres(t)
		f(t, newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(storetest.Namespace(t))), db)
	})
}

// policy is the policy of the tests that issue and validate tokens.
var policy = apitoken.Policy{
	Prefix: "test",
	Roles:  map[string]apitoken.Role{"reader": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}},
}

// readDevices is a request the tokens of issue may make.
var readDevices = apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead}

// services returns an Issuer and a Validator on s under policy; the
// Validator is closed when t ends (before the store: cleanups run last
// registered first).
func services(t testing.TB, s apitoken.Store) (*apitoken.Issuer, *apitoken.Validator) {
	t.Helper()
	iss, err := apitoken.NewIssuer(s, policy)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	v, err := apitoken.NewValidator(s, policy)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	return iss, v
}

// issue issues an org token of org_1 with the reader role.
func issue(t testing.TB, iss *apitoken.Issuer) (string, *apitoken.Token) {
	t.Helper()
	secret, tok, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "test", Roles: []string{"reader"}})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return secret.Reveal(), tok
}
