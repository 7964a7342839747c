// Package redisrate compares the Redis limiter of
// github.com/apitoken/apitoken/stores/redisstore with
// github.com/go-redis/redis_rate, the GCRA limiter the go-redis authors
// publish, on one throwaway redis-server. It lives in the bench module so
// that redis_rate never enters the library's go.mod.
//
// Run: cd bench && go test -run '^$' -bench . -count 5 ./redisrate/
package redisrate

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
)

func client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: testservers.StartRedis(tb).Addr})
	tb.Cleanup(func() { c.Close() })
	return c
}

// allowFunc takes one request from the budget of key i and reports
// whether it was allowed.
type allowFunc func(ctx context.Context, i int) (bool, error)

// limiters returns both limiters under one limit: burst requests at once,
// then rate per second.
func limiters(tb testing.TB, c *redis.Client, rate, burst int) map[string]allowFunc {
	tb.Helper()
	ours, err := redisstore.NewLimiter(tb.Context(), c, redisstore.WithKeyPrefix("bench"))
	if err != nil {
		tb.Fatal(err)
	}
	ourLimit := apitoken.Limit{Rate: apitoken.Rate(rate), Burst: burst}
	theirs := redis_rate.NewLimiter(c)
	theirLimit := redis_rate.Limit{Rate: rate, Burst: burst, Period: time.Second}
	now := time.Now()
	return map[string]allowFunc{
		"apitoken": func(ctx context.Context, i int) (bool, error) {
			d, err := ours.Allow(ctx, apitoken.UserKey("user_"+strconv.Itoa(i)), ourLimit, now)
			return d.Allowed, err
		},
		"redis_rate": func(ctx context.Context, i int) (bool, error) {
			r, err := theirs.Allow(ctx, "user_"+strconv.Itoa(i), theirLimit)
			return err == nil && r.Allowed > 0, err
		},
	}
}

// TestSameDecisions checks that the two limiters are comparable: under one
// slow limit both allow exactly the burst.
func TestSameDecisions(t *testing.T) {
	c := client(t)
	for name, allow := range limiters(t, c, 1, 3) {
		allowed := 0
		for range 10 {
			ok, err := allow(t.Context(), 0)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if ok {
				allowed++
			}
		}
		// A rate of 1/s may refill one during the calls.
		if allowed < 3 || allowed > 4 {
			t.Errorf("%s allowed %d of 10 requests under burst 3, want 3 (or 4)", name, allowed)
		}
	}
}

// BenchmarkAllow measures one Allow of each limiter (one script, one
// round trip each) over 1,024 budgets, never exhausted.
func BenchmarkAllow(b *testing.B) {
	c := client(b)
	for _, name := range []string{"apitoken", "redis_rate"} {
		allow := limiters(b, c, 1<<30, 1<<30)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := allow(b.Context(), i%1024); err != nil || !ok {
					b.Fatalf("Allow = %v, %v", ok, err)
				}
				i++
			}
		})
	}
}
