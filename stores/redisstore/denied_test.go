package redisstore_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// TestDeniedRequestCostsNoBudget: with the Store as its own limiter, the one
// round trip that looks a token up also charges its budget, before the
// Validator's IP and access checks. A request those checks then deny must
// get its request back (a second round trip, on that path only), so a
// client outside a token's IP filter, or asking for more access than the
// token has, cannot spend the token's budget.
func TestDeniedRequestCostsNoBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range countedClients {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &counter{}
			store := newStore(t, tc.client(t, c))
			pol := apitoken.Policy{Prefix: prefix, IPFilters: map[string][]string{"office": {"10.0.0.0/8"}},
				OrgRateLimit: apitoken.Limit{Rate: apitoken.Per(3, time.Hour), Burst: 3}}
			v := newValidator(t, store, pol, apitoken.WithLimiter(store))
			secret, _ := issue(t, store, pol, apitoken.Spec{IPFilter: "office",
				Grants: apitoken.Grants{"devices": apitoken.AccessRead}})
			office := apitoken.Request{IP: netip.MustParseAddr("10.1.2.3"), Org: "org_1", API: "devices", Access: apitoken.AccessRead}
			outside := office
			outside.IP = netip.MustParseAddr("192.0.2.7")
			write := office
			write.Access = apitoken.AccessFull

			for range 5 {
				before := c.n.Load()
				_, err := v.Validate(t.Context(), secret, outside)
				require.ErrorIs(t, err, apitoken.ErrIPNotAllowed)
				assert.Equal(t, int64(2), c.n.Load()-before, "a denied request: the lookup, then the refund")
				_, err = v.Validate(t.Context(), secret, write)
				require.ErrorIs(t, err, apitoken.ErrForbidden)
			}
			for i := range 3 {
				before := c.n.Load()
				p, err := v.Validate(t.Context(), secret, office)
				require.NoError(t, err, "request %d of the burst of 3 after 10 denied ones", i+1)
				assert.Equal(t, 2-i, p.Decision.Remaining)
				assert.Equal(t, int64(1), c.n.Load()-before, "an admitted request: one round trip")
			}
			_, err := v.Validate(t.Context(), secret, office)
			assert.ErrorIs(t, err, apitoken.ErrRateLimited, "the limit itself still holds")
		})
	}
}
