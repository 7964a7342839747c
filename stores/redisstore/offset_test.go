package redisstore_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestTimeOffset drives the Redis limiter's clock, which reads server TIME
// and so ignores apitoken.WithClock, with WithTimeOffset: a rate-limited
// token is still limited a second before its retry delay has passed on
// that clock and allowed again once it has, with no sleep. Through a
// Validator whose limiter is the Store (the combined lookup) and through a
// stand-alone Limiter, on a single server and a Cluster.
func TestTimeOffset(t *testing.T) {
	t.Parallel()
	hourly := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}
	for _, c := range countedClients {
		t.Run(c.name, func(t *testing.T) {
			client := c.client(t, &counter{})
			var offset atomic.Int64 // a time.Duration
			advance := func(d time.Duration) { offset.Add(int64(d)) }
			clock := redisstore.WithTimeOffset(func() time.Duration { return time.Duration(offset.Load()) })

			t.Run("Validator", func(t *testing.T) {
				store := newStore(t, client, clock)
				policy := apitoken.Policy{Prefix: "test", OrgRateLimit: hourly}
				iss, err := apitoken.NewIssuer(store, policy)
				require.NoError(t, err)
				v, err := apitoken.NewValidator(store, policy, apitoken.WithLimiter(store))
				require.NoError(t, err)
				t.Cleanup(func() { v.Close(t.Context()) })
				secret, _, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})
				require.NoError(t, err)
				validate := func() error {
					_, err := v.Validate(t.Context(), secret.Reveal(), apitoken.Request{Org: "org_1"})
					return err
				}

				require.NoError(t, validate(), "first request")
				err = validate()
				require.ErrorIs(t, err, apitoken.ErrRateLimited, "second request")
				var rl *apitoken.RateLimitError
				require.ErrorAs(t, err, &rl)
				retry := rl.RetryAfter()
				assert.InDelta(t, time.Hour, retry, float64(time.Minute), "RetryAfter")

				advance(retry - time.Second)
				assert.ErrorIs(t, validate(), apitoken.ErrRateLimited, "a second before the retry delay has passed")
				advance(time.Second)
				assert.NoError(t, validate(), "once the retry delay has passed")
				assert.ErrorIs(t, validate(), apitoken.ErrRateLimited, "the next request")
			})

			t.Run("Limiter", func(t *testing.T) {
				lim, err := redisstore.NewLimiter(t.Context(), client, redisstore.WithKeyPrefix(storetest.Namespace(t)), clock)
				require.NoError(t, err)
				key, now := apitoken.UserKey("user_1"), time.Now()
				d, err := lim.Allow(t.Context(), key, hourly, now)
				require.NoError(t, err)
				require.True(t, d.Allowed, "first request")
				d, err = lim.Allow(t.Context(), key, hourly, now)
				require.NoError(t, err)
				require.False(t, d.Allowed, "second request")

				advance(d.RetryAfter - time.Second)
				d2, err := lim.Allow(t.Context(), key, hourly, now)
				require.NoError(t, err)
				assert.False(t, d2.Allowed, "a second before the retry delay has passed")
				assert.InDelta(t, time.Second, d2.RetryAfter, float64(100*time.Millisecond), "RetryAfter then")
				advance(time.Second)
				d, err = lim.Allow(t.Context(), key, hourly, now)
				require.NoError(t, err)
				assert.True(t, d.Allowed, "once the retry delay has passed")
			})
		})
	}
}

func TestTimeOffsetNil(t *testing.T) {
	t.Parallel()
	client := singleClient(t, testservers.StartRedis(t))
	_, err := redisstore.New(t.Context(), client, redisstore.WithTimeOffset(nil))
	assert.Error(t, err)
}
