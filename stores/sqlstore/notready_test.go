package sqlstore_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestNotReady: a store on a database without the current schema fails
// every call with the exported schema error, whose text says what to do,
// and so do NewIssuer and NewValidator on it, until Migrate; then it works. Each dialect, each way a schema can be
// wrong: absent, older, newer.
func TestNotReady(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	calls := []struct {
		name string
		call func(s *sqlstore.Store) error
	}{
		{"Create", func(s *sqlstore.Store) error { return s.Create(t.Context(), crashToken(now), 0) }},
		{"Get", func(s *sqlstore.Store) error { _, err := s.Get(t.Context(), "x"); return err }},
		{"GetByHash", func(s *sqlstore.Store) error {
			_, err := s.GetByHash(t.Context(), apitoken.Hash{1})
			return err
		}},
		{"Update", func(s *sqlstore.Store) error { return s.Update(t.Context(), crashToken(now)) }},
		{"Revoke", func(s *sqlstore.Store) error { return s.Revoke(t.Context(), "x", now) }},
		{"RevokeAll", func(s *sqlstore.Store) error {
			_, err := s.RevokeAll(t.Context(), apitoken.Owner{Kind: apitoken.KindUser, ID: "u"}, now)
			return err
		}},
		{"Delete", func(s *sqlstore.Store) error { return s.Delete(t.Context(), "x") }},
		{"List", func(s *sqlstore.Store) error { _, err := s.List(t.Context(), apitoken.Filter{}); return err }},
		{"Touch", func(s *sqlstore.Store) error {
			return s.Touch(t.Context(), []apitoken.Use{{ID: "x", At: now}})
		}},
		{"Prune", func(s *sqlstore.Store) error {
			_, err := s.Prune(t.Context(), apitoken.PruneRequest{IdleBefore: now, Limit: 10})
			return err
		}},
		{"RecordPolicy", func(s *sqlstore.Store) error {
			_, err := s.RecordPolicy(t.Context(), policy.ID())
			return err
		}},
	}
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			var db *sql.DB
			if d == sqlstore.SQLite {
				db, _ = openSQLite(t)
			} else {
				db, _ = openPostgres(t)
			}
			for _, c := range []struct {
				name    string
				prepare func(t *testing.T, s *sqlstore.Store, ns string)
				want    error
				text    string // in the error's text
			}{
				{"Absent", func(*testing.T, *sqlstore.Store, string) {}, sqlstore.ErrNotMigrated, "call Store.Migrate"},
				{"Older", func(t *testing.T, s *sqlstore.Store, _ string) {
					require.NoError(t, sqlstore.MigrateTo(t.Context(), s, 1))
				}, sqlstore.ErrSchemaOutdated, fmt.Sprintf("call Store.Migrate (database at version 1, this program needs %d)", sqlstore.SchemaVersion)},
				{"Newer", func(t *testing.T, s *sqlstore.Store, ns string) {
					// A fresh store on the same tables, so that s has not
					// seen the current schema yet.
					require.NoError(t, bare(t, db, d, ns).Migrate(t.Context()))
					recordVersion(t, db, d, ns, sqlstore.SchemaVersion+1)
				}, sqlstore.ErrSchemaTooNew, fmt.Sprintf("upgrade the program (database at version %d", sqlstore.SchemaVersion+1)},
			} {
				t.Run(c.name, func(t *testing.T) {
					ns := storetest.Namespace(t)
					s := bare(t, db, d, ns)
					c.prepare(t, s, ns)
					for _, call := range calls {
						err := call.call(s)
						require.ErrorIs(t, err, c.want, "%s", call.name)
						assert.Contains(t, err.Error(), c.text, "%s", call.name)
					}
					// The constructors ask the store's Ready, so a program
					// on such a database stops at start-up.
					for name, construct := range map[string]func() error{
						"NewIssuer":    func() error { _, err := apitoken.NewIssuer(s, policy); return err },
						"NewValidator": func() error { _, err := apitoken.NewValidator(s, policy); return err },
					} {
						err := construct()
						require.ErrorIs(t, err, c.want, "%s", name)
						assert.Contains(t, err.Error(), c.text, "%s", name)
					}
					if c.want == sqlstore.ErrSchemaTooNew {
						return // Migrate does not downgrade
					}
					require.NoError(t, s.Migrate(t.Context()))
					for _, call := range calls {
						err := call.call(s)
						assert.NotErrorIs(t, err, c.want, "%s after Migrate", call.name)
					}
					_, _, err := mustIssuer(t, s).Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "x"})
					assert.NoError(t, err, "Issue after Migrate")
				})
			}
		})
	}
}

// recordVersion records schema version v in the migrations table of the
// store bare(t, db, d, ns), as a newer program would.
func recordVersion(t *testing.T, db *sql.DB, d sqlstore.Dialect, ns string, v int) {
	t.Helper()
	now := "0"
	if d == sqlstore.Postgres {
		now = "now()"
	}
	_, err := db.ExecContext(t.Context(), fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%d, 'from the future', %s)",
		migrationsTable(d, ns), v, now))
	require.NoError(t, err)
}
