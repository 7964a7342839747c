package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

// TestClosedDB: every operation on a store whose *sql.DB was closed fails
// with an error (not ErrNotFound, not success), and validation reports
// ErrStoreUnavailable.
func TestClosedDB(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, db *sql.DB) {
		ctx := t.Context()
		iss, v := services(t, s)
		secret, tok := issue(t, iss)
		if _, err := v.Validate(ctx, secret, readDevices); err != nil {
			t.Fatalf("Validate before closing the database: %v", err)
		}
		db.Close()

		if _, err := v.Validate(ctx, secret, readDevices); !errors.Is(err, apitoken.ErrStoreUnavailable) {
			t.Errorf("Validate on a closed *sql.DB error = %v, want %v", err, apitoken.ErrStoreUnavailable)
		}
		other := tok.Clone()
		other.ID, other.Hash = "other", apitoken.Hash{1}
		_, getErr := s.Get(ctx, tok.ID)
		_, hashErr := s.GetByHash(ctx, tok.Hash)
		_, listErr := s.List(ctx, apitoken.Filter{})
		_, revokeAllErr := s.RevokeAll(ctx, tok.Owner(), time.Now())
		_, pruneErr := s.Prune(ctx, apitoken.PruneRequest{IdleBefore: time.Now(), Limit: 10})
		_, versionErr := s.Version(ctx)
		for _, c := range []struct {
			call string
			err  error
		}{
			{"Get", getErr},
			{"GetByHash", hashErr},
			{"List", listErr},
			{"Create", s.Create(ctx, other, 0)},
			{"Update", s.Update(ctx, tok.Clone())},
			{"Revoke", s.Revoke(ctx, tok.ID, time.Now())},
			{"RevokeAll", revokeAllErr},
			{"Delete", s.Delete(ctx, tok.ID)},
			{"Touch", s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: time.Now()}})},
			{"Prune", pruneErr},
			{"Migrate", s.Migrate(ctx)},
			{"Version", versionErr},
		} {
			if c.err == nil || errors.Is(c.err, apitoken.ErrNotFound) || errors.Is(c.err, apitoken.ErrConflict) {
				t.Errorf("%s on a closed *sql.DB error = %v, want an infrastructure error", c.call, c.err)
			} else if !strings.HasPrefix(c.err.Error(), "sqlstore: ") {
				t.Errorf("%s error %q does not start with \"sqlstore: \"", c.call, c.err)
			}
		}
	})
}

// TestCorruptRow: a row whose JSON attributes (or hash) cannot be decoded
// is an error naming its token's ID, never its hash; other tokens work.
func TestCorruptRow(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, db *sql.DB) {
		ctx := t.Context()
		iss, v := services(t, s)
		goodSecret, good := issue(t, iss)
		badSecret, bad := issue(t, iss)
		tokens := tokensTable(t, s, db)
		for _, c := range []struct {
			name, set string
		}{
			// jsonb only holds valid JSON; a value of the wrong shape is
			// the corruption PostgreSQL can have.
			{"JSON of the wrong shape", `attrs = '{"roles": 5}'`},
			{"JSON that is not an object", `attrs = '[1, 2]'`},
			{"truncated hash", "hash = " + map[sqlstore.Dialect]string{sqlstore.SQLite: "x'0102'", sqlstore.Postgres: `'\x0102'::bytea`}[s.Dialect()]},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := db.ExecContext(ctx, "UPDATE "+tokens+" SET "+c.set+" WHERE id = $1", bad.ID); err != nil {
					t.Fatalf("corrupt the row: %v", err)
				}
				checkCorrupt(t, s, v, bad, badSecret)
				if got, err := s.Get(ctx, good.ID); err != nil || got.ID != good.ID {
					t.Errorf("Get(other token) = %v, want it", err)
				}
				if _, err := v.Validate(ctx, goodSecret, readDevices); err != nil {
					t.Errorf("Validate(other token) = %v, want nil", err)
				}
				// Put the row back for the next case.
				fix := "UPDATE " + tokens + " SET attrs = '{}', hash = $1 WHERE id = $2"
				if _, err := db.ExecContext(ctx, fix, bad.Hash[:], bad.ID); err != nil {
					t.Fatalf("repair the row: %v", err)
				}
			})
		}
		if s.Dialect() == sqlstore.SQLite {
			t.Run("text that is not JSON", func(t *testing.T) {
				if _, err := db.ExecContext(ctx, "UPDATE "+tokens+" SET attrs = '{\"roles\": [' WHERE id = ?", bad.ID); err != nil {
					t.Fatalf("corrupt the row: %v", err)
				}
				checkCorrupt(t, s, v, bad, badSecret)
				if _, err := v.Validate(ctx, goodSecret, readDevices); err != nil {
					t.Errorf("Validate(other token) = %v, want nil", err)
				}
			})
		}
	})
}

func checkCorrupt(t *testing.T, s *sqlstore.Store, v *apitoken.Validator, bad *apitoken.Token, secret string) {
	t.Helper()
	ctx := t.Context()
	_, getErr := s.Get(ctx, bad.ID)
	_, hashErr := s.GetByHash(ctx, bad.Hash)
	_, listErr := s.List(ctx, apitoken.Filter{})
	_, validateErr := v.Validate(ctx, secret, readDevices)
	for _, c := range []struct {
		call string
		err  error
	}{{"Get", getErr}, {"GetByHash", hashErr}, {"List", listErr}, {"Validate", validateErr}} {
		switch {
		case c.err == nil || errors.Is(c.err, apitoken.ErrNotFound):
			t.Errorf("%s(corrupt token) error = %v, want an error naming the token", c.call, c.err)
		case !strings.Contains(c.err.Error(), bad.ID):
			t.Errorf("%s(corrupt token) error %q does not name token %s", c.call, c.err, bad.ID)
		}
		if c.err != nil && (strings.Contains(c.err.Error(), hex.EncodeToString(bad.Hash[:])) || strings.Contains(c.err.Error(), secret)) {
			t.Errorf("%s error %q holds the hash or the token", c.call, c.err)
		}
	}
	if !errors.Is(validateErr, apitoken.ErrStoreUnavailable) {
		t.Errorf("Validate(corrupt token) error = %v, want %v", validateErr, apitoken.ErrStoreUnavailable)
	}
}

// tokensTable returns the tokens table of a store made by dialects (in a
// database of its own, so the only one).
func tokensTable(t *testing.T, s *sqlstore.Store, db *sql.DB) string {
	t.Helper()
	name := sqlstore.DefaultTablePrefix + "tokens"
	if s.Dialect() == sqlstore.SQLite {
		return name
	}
	var schema string
	if err := db.QueryRowContext(t.Context(), "SELECT schemaname FROM pg_tables WHERE tablename = $1", name).Scan(&schema); err != nil {
		t.Fatalf("find the tokens table: %v", err)
	}
	return schema + "." + name
}

// TestErrorsHoldNoHashes: the errors of refused writes name the token by
// ID, never by hash.
func TestErrorsHoldNoHashes(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ *sql.DB) {
		ctx := t.Context()
		iss, _ := services(t, s)
		_, a := issue(t, iss)
		b := a.Clone()
		b.ID = "b"
		err := s.Create(ctx, b, 0)
		if !errors.Is(err, apitoken.ErrConflict) {
			t.Fatalf("Create(duplicate hash) = %v, want %v", err, apitoken.ErrConflict)
		}
		u, _ := s.Get(ctx, a.ID)
		u.Version = 99
		err2 := s.Update(ctx, u)
		for _, e := range []error{err, err2} {
			msg := e.Error()
			if strings.Contains(msg, hex.EncodeToString(a.Hash[:])) || strings.Contains(msg, `\x`) || strings.Contains(msg, string(a.Hash[:])) {
				t.Errorf("error %q holds a hash", msg)
			}
		}
	})
}

func TestNewOptions(t *testing.T) {
	db, _ := openSQLite(t)
	for _, c := range []struct {
		name string
		db   *sql.DB
		d    sqlstore.Dialect
		opts []sqlstore.Option
	}{
		{"nil db", nil, sqlstore.SQLite, nil},
		{"unknown dialect", db, 0, nil},
		{"prefix with a quote", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix(`x"; DROP TABLE t; --`)}},
		{"prefix with capitals", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix("Tokens_")}},
		{"prefix too long", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix(strings.Repeat("a", 33))}},
		{"schema on SQLite", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithSchema("auth")}},
		{"schema with a dot", db, sqlstore.Postgres, []sqlstore.Option{sqlstore.WithSchema("a.b")}},
		{"nil option", db, sqlstore.SQLite, []sqlstore.Option{nil}},
	} {
		if s, err := sqlstore.New(c.db, c.d, c.opts...); err == nil {
			t.Errorf("New(%s) = %v, nil; want an error", c.name, s)
		}
	}
	if _, err := sqlstore.New(db, sqlstore.SQLite, sqlstore.WithTablePrefix("")); err != nil {
		t.Errorf("New(empty prefix) error = %v, want nil", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", "x.db?_pragma=journal_mode(DELETE)"} {
		if db, err := sqlite.OpenDB(ctx, path); err == nil {
			db.Close()
			t.Errorf("sqlite.OpenDB(%q) error = nil, want an error", path)
		}
	}
	const secret = "s3cr3t-Passw0rd"
	for _, dsn := range []string{
		"postgres://user:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=1",
		"host=127.0.0.1 port=notaport password=" + secret,
	} {
		db, err := postgres.OpenDB(ctx, dsn)
		if err == nil {
			db.Close()
			t.Errorf("postgres.OpenDB(unreachable or malformed DSN) error = nil, want an error")
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "127.0.0.1:1/db") {
			t.Errorf("postgres.OpenDB error %q holds the DSN", err)
		}
	}
}
