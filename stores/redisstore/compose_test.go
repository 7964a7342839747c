package redisstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestBudgetsCompose checks that an org token's budget and a user's budget
// are apart: a request one of them denies consumes nothing of the other, in
// both directions, and the request a combined lookup charged and then
// refunded (a user token denied by its access) goes back to the user's
// budget, not to the token's. The user's ID is the org token's ID, so a
// limiter that mixed up the two budgets' keys would show. Limits are
// hourly, so no request is refilled during the test. On a single server
// and a Cluster, with the Store as its own limiter and with a separate
// Limiter.
func TestBudgetsCompose(t *testing.T) {
	t.Parallel()
	tokenLimit := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 3}
	userLimit := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 4}
	pol := apitoken.Policy{Prefix: prefix, OrgRateLimit: tokenLimit, UserRateLimit: userLimit}
	for _, c := range countedClients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			client := c.client(t, &counter{})
			for _, mode := range []string{"combined", "Limiter"} {
				for _, spent := range []string{"token budget spent", "user budget spent"} {
					t.Run(mode+"/"+spent, func(t *testing.T) {
						store := newStore(t, client)
						lim := apitoken.Limiter(store)
						if mode == "Limiter" {
							l, err := redisstore.NewLimiter(t.Context(), client, redisstore.WithKeyPrefix(storetest.Namespace(t)+"-lim"))
							require.NoError(t, err)
							lim = l
						}
						v := newValidator(t, store, pol, apitoken.WithLimiter(lim))
						orgTok, org := issue(t, store, pol, apitoken.Spec{})
						// The user's ID is the org token's ID.
						user := org.ID
						userTok, _ := issue(t, store, pol, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user})
						readTok, _ := issue(t, store, pol, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user,
							Grants: apitoken.Grants{"devices": apitoken.AccessRead}})
						composeBudgets(t, v, spent == "token budget spent", orgTok, userTok, readTok,
							func() bool {
								d, err := lim.Allow(t.Context(), apitoken.UserKey(user), userLimit, time.Now())
								require.NoError(t, err)
								return d.Allowed
							})
					})
				}
			}
		})
	}
}

// composeBudgets spends one budget and then counts the other: with
// tokenFirst, orgTok's budget (3 requests), then 5 more requests it denies
// and 3 of the user's that its access denies, and then the user's budget
// must still allow exactly 4 (alternating userTok, readTok and a host
// login, charged to the user's budget); without, the user's budget first
// (and 5 denials), then orgTok's must allow exactly 3. readTok may only
// read "devices".
func composeBudgets(t *testing.T, v *apitoken.Validator, tokenFirst bool, orgTok, userTok, readTok string, login func() bool) {
	t.Helper()
	const tokenBurst, userBurst = 3, 4
	read := apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead}
	full := apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull}
	// count makes n requests with next and returns how many were allowed;
	// every other outcome must be ErrRateLimited.
	count := func(n int, next func(i int) error) int {
		allowed := 0
		for i := range n {
			switch err := next(i); {
			case err == nil:
				allowed++
			default:
				require.ErrorIs(t, err, apitoken.ErrRateLimited)
			}
		}
		return allowed
	}
	org := func(int) error { _, err := v.Validate(t.Context(), orgTok, read); return err }
	users := func(i int) error {
		switch i % 3 {
		case 0:
			_, err := v.Validate(t.Context(), userTok, read)
			return err
		case 1:
			_, err := v.Validate(t.Context(), readTok, read)
			return err
		}
		if login() {
			return nil
		}
		return apitoken.ErrRateLimited
	}
	if tokenFirst {
		require.Equal(t, tokenBurst, count(tokenBurst+5, org), "org token: allowed of its burst + 5")
		for range 3 {
			_, err := v.Validate(t.Context(), readTok, full)
			require.ErrorIs(t, err, apitoken.ErrForbidden, "read-only user token asking for full access")
		}
		assert.Zero(t, count(2, org), "org token after the user's refunded requests")
		assert.Equal(t, userBurst, count(userBurst+5, users), "user's budget after the org token's denials: allowed of its burst + 5")
		return
	}
	require.Equal(t, userBurst, count(userBurst+5, users), "user's budget: allowed of its burst + 5")
	assert.Equal(t, tokenBurst, count(tokenBurst+5, org), "org token after the user's denials: allowed of its burst + 5")
}
