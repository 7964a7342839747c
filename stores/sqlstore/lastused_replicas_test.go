package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/storefaults"
	"github.com/apitoken/apitoken/stores/sqlstore"
)

// TestReplicaFlushesOutOfOrder runs four replica Validators, each on its
// own clock, on one store, and checks that a token's stored last-used time
// never moves backwards when their flushes land out of order: first one
// after another, newest first; then 20 rounds of uses at random instants
// (over a flush interval apart) flushed at once, while a reader checks that no read sees an earlier time
// than the read before it.
func TestReplicaFlushesOutOfOrder(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ *sql.DB) {
		storefaults.ReplicaFlushesOutOfOrder(t, faultFixture(t, s, policy))
	})
}

// faultFixture is store s under pol for the helpers of package
// storefaults: it issues tokens with issue, on one Issuer, and builds
// Validators that are closed when their test ends; the tokens may make
// readDevices.
func faultFixture(t testing.TB, s apitoken.Store, pol apitoken.Policy) storefaults.Fixture {
	t.Helper()
	iss, err := apitoken.NewIssuer(s, pol)
	require.NoError(t, err)
	return storefaults.Fixture{
		Store:  s,
		Policy: pol,
		Issue:  func(t testing.TB) (string, *apitoken.Token) { return issue(t, iss) },
		NewValidator: func(t testing.TB, opts ...apitoken.ValidatorOption) *apitoken.Validator {
			t.Helper()
			v, err := apitoken.NewValidator(s, pol, opts...)
			require.NoError(t, err)
			t.Cleanup(func() { v.Close(context.Background()) })
			return v
		},
		Request: readDevices,
	}
}
