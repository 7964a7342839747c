package apitoken_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/stores/memstore"
)

// TestLocalLimiterBudgetsCompose checks that with a LocalLimiter an org
// token's budget and a user's budget are apart: a request one of them
// denies consumes nothing of the other, in both directions. The user's ID
// is the org token's ID, so a limiter that mixed up the two budgets would
// show; the clock stands still, so nothing is refilled. The user's budget
// is charged by two of the user's tokens and by host logins.
// (stores/redisstore's TestBudgetsCompose runs the same on Redis.)
func TestLocalLimiterBudgetsCompose(t *testing.T) {
	t.Parallel()
	const tokenBurst, userBurst = 3, 4
	tokenLimit := apitoken.Limit{Rate: 1, Burst: tokenBurst}
	userLimit := apitoken.Limit{Rate: 1, Burst: userBurst}
	pol := apitoken.Policy{Prefix: "acme", OrgRateLimit: tokenLimit, UserRateLimit: userLimit}
	read := apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead}
	full := apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull}
	for _, tc := range []struct {
		name       string
		tokenFirst bool
	}{{"token budget spent", true}, {"user budget spent", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := apitokentest.NewClock(t0)
			store, lim := memstore.New(), apitoken.NewLocalLimiter()
			iss, err := apitoken.NewIssuer(store, pol, apitoken.WithClock(clock.Now))
			require.NoError(t, err)
			issue := func(spec apitoken.Spec) (string, *apitoken.Token) {
				secret, tok, err := iss.Issue(t.Context(), spec)
				require.NoError(t, err)
				return secret.Reveal(), tok
			}
			orgTok, org := issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci",
				Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}})
			user := org.ID
			userTok, _ := issue(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user, Name: "cli"})
			readTok, _ := issue(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user, Name: "ro",
				Grants: apitoken.Grants{"devices": apitoken.AccessRead}})
			dir := &apitokentest.Directory{}
			dir.Set(user, "org_1", apitoken.Membership{Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}})
			v, err := apitoken.NewValidator(store, pol, apitoken.WithLimiter(lim), apitoken.WithUsers(dir), apitoken.WithClock(clock.Now))
			require.NoError(t, err)
			t.Cleanup(func() { v.Close(t.Context()) })

			// count makes n requests with next and returns how many were
			// allowed; every other outcome must be ErrRateLimited.
			count := func(n int, next func(i int) error) int {
				allowed := 0
				for i := range n {
					if err := next(i); err != nil {
						require.ErrorIs(t, err, apitoken.ErrRateLimited)
					} else {
						allowed++
					}
				}
				return allowed
			}
			orgReq := func(int) error { _, err := v.Validate(t.Context(), orgTok, read); return err }
			userReq := func(i int) error {
				switch i % 3 {
				case 0:
					_, err := v.Validate(t.Context(), userTok, read)
					return err
				case 1:
					_, err := v.Validate(t.Context(), readTok, read)
					return err
				}
				d, err := lim.Allow(t.Context(), apitoken.UserKey(user), userLimit, clock.Now()) // a host login
				require.NoError(t, err)
				if !d.Allowed {
					return apitoken.ErrRateLimited
				}
				return nil
			}
			if tc.tokenFirst {
				require.Equal(t, tokenBurst, count(tokenBurst+5, orgReq), "org token: allowed of its burst + 5")
				for range 3 {
					_, err := v.Validate(t.Context(), readTok, full)
					require.ErrorIs(t, err, apitoken.ErrForbidden, "read-only user token asking for full access")
				}
				assert.Zero(t, count(2, orgReq), "org token after the user's denied requests")
				assert.Equal(t, userBurst, count(userBurst+5, userReq), "user's budget after the org token's denials: allowed of its burst + 5")
				return
			}
			require.Equal(t, userBurst, count(userBurst+5, userReq), "user's budget: allowed of its burst + 5")
			assert.Equal(t, tokenBurst, count(tokenBurst+5, orgReq), "org token after the user's denials: allowed of its burst + 5")
		})
	}
}
