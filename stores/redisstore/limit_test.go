package redisstore_test

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// load is what hammer counted.
type load struct {
	allowed, limited int64
	elapsed          time.Duration
}

// hammer runs perValidator goroutines on each of vals for d, each
// validating tokens[i%len(tokens)] (i counting goroutines) in a loop, and
// counts the requests allowed and those rate-limited. Any other outcome
// fails t. The elapsed time runs from before the first request to after
// the last answer.
func hammer(t *testing.T, vals []*apitoken.Validator, tokens []string, perValidator int, d time.Duration) load {
	t.Helper()
	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range len(vals) * perValidator {
		v, tok := vals[i%len(vals)], tokens[i%len(tokens)]
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_, err := v.Validate(t.Context(), tok, req)
				var rl *apitoken.RateLimitError
				switch {
				case err == nil:
					allowed.Add(1)
				case errors.As(err, &rl) && rl.RetryAfter() > 0:
					limited.Add(1)
				default:
					t.Errorf("Validate error = %v, want nil or a RateLimitError with a RetryAfter", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return load{allowed: allowed.Load(), limited: limited.Load(), elapsed: time.Since(start)}
}

// exact returns the bounds of the count of requests a GCRA budget under
// limit allows to callers that keep asking for elapsed: the burst at
// once, then one every 1/Rate, so burst + ⌊rate·elapsed⌋, give or take one
// for a refill that lands as the run starts or ends (and for the few
// milliseconds between the client's clock and the server's).
func exact(limit apitoken.Limit, elapsed time.Duration) (lo, hi int64) {
	n := int64(limit.Burst) + int64(math.Floor(float64(limit.Rate)*elapsed.Seconds()))
	return n - 1, n + 1
}
