package sqlstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
)

// TestConstructorsRefuseAnUnmigratedStore: the first-day trap of issue 20.
// Before, NewIssuer and NewValidator on a database never migrated
// succeeded and every request was a 503 with nothing logged; now each
// constructor fails with ErrNotMigrated, whose message says what to do. A
// database that cannot be reached does not fail construction (it may come
// up later; validation fails closed meanwhile).
func TestConstructorsRefuseAnUnmigratedStore(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			db, _ := openSQLite(t)
			if d == sqlstore.Postgres {
				db, _ = openPostgres(t)
			}
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close(context.Background()) })

			constructors := map[string]func() error{
				"NewIssuer":    func() error { _, err := apitoken.NewIssuer(s, apitoken.Policy{}); return err },
				"NewValidator": func() error { _, err := apitoken.NewValidator(s, apitoken.Policy{}); return err },
				"NewPruner":    func() error { _, err := apitoken.NewPruner(s, apitoken.Policy{}); return err },
			}
			for name, construct := range constructors {
				err := construct()
				require.ErrorIs(t, err, sqlstore.ErrNotMigrated, name)
				assert.EqualError(t, err, "apitoken: "+name+": the store cannot serve: sqlstore: database has no apitoken schema: "+
					"call Store.Migrate first (for SQLite, or open it with sqlite.WithMigrate)")
			}

			require.NoError(t, s.Migrate(t.Context()))
			iss, err := apitoken.NewIssuer(s, apitoken.Policy{})
			require.NoError(t, err)
			v, err := apitoken.NewValidator(s, apitoken.Policy{})
			require.NoError(t, err)
			require.NoError(t, v.Close(context.Background()))
			_ = iss

			// A database gone away: the store is unavailable, not unfit.
			require.NoError(t, db.Close())
			down, err := sqlstore.New(db, d)
			require.NoError(t, err)
			require.ErrorIs(t, down.Ready(t.Context()), apitoken.ErrStoreUnavailable)
			v, err = apitoken.NewValidator(down, apitoken.Policy{})
			require.NoError(t, err)
			require.NoError(t, v.Close(context.Background()))
		})
	}
}
