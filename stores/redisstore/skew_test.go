package redisstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestClockSkew runs three replica Validators whose clocks (WithClock) are
// 5 s behind, right and 5 s ahead, each with its own client to one Redis,
// on one org token under burst 5 and 2 a second. The replicas first take
// what they can one after the other, slowest clock first, then 4
// goroutines each validate for 4.25 s. The Redis limiter charges budgets
// on the server's clock, so the skewed replicas allow the count of a
// control run without skew (burst + ⌊rate·elapsed⌋, about 13), ±1: with
// the Store as their limiter (the combined lookup) and with a Limiter.
//
// The canary is a limiter that takes "now" from the app: the same GCRA
// script, moved by WithTimeOffset onto each replica's own clock. There the
// replica 5 s ahead finds a budget that the others charged "in its past"
// full again, and the replica on time one the slow replica charged; the
// canary must fail the assertion (allow more than one off the control),
// which shows that the test detects a limiter on the app's clock.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	limit := apitoken.Limit{Rate: 2, Burst: 5}
	pol := apitoken.Policy{Prefix: prefix, OrgRateLimit: limit}
	skews := []time.Duration{-5 * time.Second, 0, 5 * time.Second}
	run := 4*time.Second + time.Duration(float64(time.Second)/float64(limit.Rate)/2) // see TestReplicas

	variants := []struct {
		name    string
		skewed  bool
		limiter string // "store" (combined), "limiter" (a Redis Limiter) or "canary"
	}{
		{"control: no skew, Store as limiter", false, "store"},
		{"±5 s, Store as limiter", true, "store"},
		{"±5 s, Redis Limiter", true, "limiter"},
		{"canary: ±5 s, a limiter on the app's clock", true, "canary"},
	}
	type result struct {
		prologue int
		load
	}
	results := make([]result, len(variants))
	var wg sync.WaitGroup
	for i, vr := range variants {
		ns := storetest.Namespace(t) + "-" + vr.limiter
		if !vr.skewed {
			ns += "-control"
		}
		var stores []*redisstore.Store
		var vals []*apitoken.Validator
		for _, skew := range skews {
			if !vr.skewed {
				skew = 0
			}
			clock := func() time.Time { return time.Now().Add(skew) }
			client := singleClient(t, srv)
			s, err := redisstore.New(t.Context(), client, redisstore.WithKeyPrefix(ns))
			require.NoError(t, err)
			var lim apitoken.Limiter = s
			switch vr.limiter {
			case "limiter":
				lim, err = redisstore.NewLimiter(t.Context(), client, redisstore.WithKeyPrefix(ns+"-lim"))
			case "canary":
				// The app's now, as an offset from the server's clock
				// (both run on this machine's).
				appNow := redisstore.WithTimeOffset(func() time.Duration { return time.Until(clock()) })
				lim, err = redisstore.NewLimiter(t.Context(), client, redisstore.WithKeyPrefix(ns+"-lim"), appNow)
			}
			require.NoError(t, err)
			stores = append(stores, s)
			vals = append(vals, newValidator(t, s, pol, apitoken.WithLimiter(lim), apitoken.WithClock(clock)))
		}
		tok, _ := issue(t, stores[0], pol, apitoken.Spec{})
		wg.Go(func() {
			start := time.Now()
			// Slowest clock first: each replica takes what it can.
			n := 0
			for _, v := range vals {
				for range 2 * limit.Burst {
					if _, err := v.Validate(t.Context(), tok, req); err != nil {
						assert.ErrorIs(t, err, apitoken.ErrRateLimited, "%s: prologue", vr.name)
						break
					}
					n++
				}
			}
			l := hammer(t, vals, []string{tok}, 4, run)
			l.allowed += int64(n)
			l.elapsed = time.Since(start)
			results[i] = result{prologue: n, load: l}
		})
	}
	wg.Wait()

	control := results[0].allowed
	for i, vr := range variants {
		r := results[i]
		lo, hi := exact(limit, r.elapsed)
		t.Logf("%s: %d allowed (%d in the prologue), %d limited in %v (burst %d, %g/s): want %d..%d, control %d",
			vr.name, r.allowed, r.prologue, r.limited, r.elapsed.Round(time.Millisecond), limit.Burst, float64(limit.Rate), lo, hi, control)
		if vr.limiter == "canary" {
			assert.Greater(t, r.allowed, hi, "%s: allowed, want more than burst + rate·elapsed + 1 (the canary must fail)", vr.name)
			assert.Greater(t, r.allowed-control, int64(1), "%s: allowed less control, want more than 1 (the canary must fail)", vr.name)
			continue
		}
		assert.GreaterOrEqual(t, r.allowed, lo, "%s: allowed", vr.name)
		assert.LessOrEqual(t, r.allowed, hi, "%s: allowed", vr.name)
		assert.InDelta(t, control, r.allowed, 1, "%s: allowed, want the control's ±1", vr.name)
	}
}
