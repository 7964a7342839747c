package apitoken_test

// Checklist items 31, 32 and 34 on the in-process limiter (store M): exact
// counts under concurrency, long-run accuracy, backward clock jumps, and
// the user and token budgets kept apart. Every clock is injected; nothing
// sleeps.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/apitoken/apitoken"
)

// TestLocalLimiterConcurrentGoroutines is item 31: n goroutines, released
// together, each take one request from one budget at one instant; exactly
// the burst is allowed, every round, on the limiter itself and through a
// Validator (memstore, LocalLimiter) for one org token.
func TestLocalLimiterConcurrentGoroutines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		goroutines, rounds int
		limit              apitoken.Limit
	}{
		{1000, 5, apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 100}},
		{15, 100, apitoken.Limit{Rate: 1, Burst: 5}},
	}
	// race starts n goroutines that each call do once, all released at
	// once, and returns how many do calls returned true.
	race := func(n int, do func() bool) int {
		var allowed atomic.Int64
		var start, ready sync.WaitGroup
		start.Add(1)
		ready.Add(n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				ready.Done()
				start.Wait()
				if do() {
					allowed.Add(1)
				}
			})
		}
		ready.Wait()
		start.Done()
		wg.Wait()
		return int(allowed.Load())
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d goroutines, %v", tc.goroutines, tc.limit), func(t *testing.T) {
			t.Parallel()
			for round := range tc.rounds {
				l := apitoken.NewLocalLimiter()
				key := apitoken.TokenKey(fmt.Sprint("k", round))
				got := race(tc.goroutines, func() bool {
					d, err := l.Allow(context.Background(), key, tc.limit, t0)
					return err == nil && d.Allowed
				})
				require.Equal(t, tc.limit.Burst, got, "round %d: allowed of %d at one instant", round, tc.goroutines)
			}

			pol := testPolicy()
			pol.OrgRateLimit = tc.limit
			e := newEnv(t, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter()))
			tok, _ := e.issue(t, orgSpec())
			var other atomic.Int64
			got := race(tc.goroutines, func() bool {
				_, err := e.v.Validate(context.Background(), tok, readDev)
				if err != nil && !errors.Is(err, apitoken.ErrRateLimited) {
					other.Add(1)
				}
				return err == nil
			})
			assert.Equal(t, tc.limit.Burst, got, "through the Validator: allowed of %d", tc.goroutines)
			assert.Zero(t, other.Load(), "errors other than ErrRateLimited")
		})
	}
}

// TestLocalLimiterLongRun is item 32's accuracy figure: 5 s of fake time at
// 100/s with burst 100, requests far above the rate; the allowed count is
// at most ideal+1 and at least 0.999·ideal, ideal = burst + rate·elapsed
// (x/time/rate's TestLongRunningQPS bound). Once on a 100 µs grid, once
// with random gaps, and once from 4 goroutines with their own random
// timelines (each request at its goroutine's instant, interleaved), which
// end asking at the 5 s instant until refused.
func TestLocalLimiterLongRun(t *testing.T) {
	t.Parallel()
	limit := apitoken.Limit{Rate: 100, Burst: 100}
	const elapsed = 5 * time.Second
	ideal := float64(limit.Burst) + float64(limit.Rate)*elapsed.Seconds()
	check := func(name string, allowed int) {
		t.Helper()
		assert.LessOrEqual(t, float64(allowed), ideal+1, "%s: allowed over %v", name, elapsed)
		assert.GreaterOrEqual(t, float64(allowed), 0.999*ideal, "%s: allowed over %v", name, elapsed)
		t.Logf("%s: %d allowed, ideal %.0f", name, allowed, ideal)
	}
	key := apitoken.UserKey("u")
	ctx := context.Background()

	l := apitoken.NewLocalLimiter()
	allowed := 0
	for at := time.Duration(0); at <= elapsed; at += 100 * time.Microsecond {
		if d, err := l.Allow(ctx, key, limit, t0.Add(at)); err == nil && d.Allowed {
			allowed++
		}
	}
	check("100 µs grid", allowed)

	l, allowed = apitoken.NewLocalLimiter(), 0
	r := rand.New(rand.NewPCG(32, 1))
	for at := time.Duration(0); ; at += time.Duration(r.Int64N(int64(400 * time.Microsecond))) {
		at = min(at, elapsed)
		if d, err := l.Allow(ctx, key, limit, t0.Add(at)); err == nil && d.Allowed {
			allowed++
		}
		if at == elapsed {
			break
		}
	}
	check("random gaps", allowed)

	l = apitoken.NewLocalLimiter()
	var total atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(32, uint64(g+2)))
			for at := time.Duration(0); ; at += time.Duration(r.Int64N(int64(time.Millisecond))) {
				at = min(at, elapsed)
				if d, err := l.Allow(ctx, key, limit, t0.Add(at)); err == nil && d.Allowed {
					total.Add(1)
				}
				if at == elapsed {
					return
				}
			}
		})
	}
	wg.Wait()
	for {
		d, err := l.Allow(ctx, key, limit, t0.Add(elapsed))
		require.NoError(t, err)
		if !d.Allowed {
			break
		}
		total.Add(1)
	}
	check("4 goroutines", int(total.Load()))
}

// TestLocalLimiterBackwardClock is item 32's clock-jump figure: a clock
// that jumps backwards yields 0 extra requests. A budget spent at T stays
// spent from T-1h to T (1,000 requests over that hour: 0 allowed) and
// refills from T as it would have. And over 20 random walks of 1,000
// requests on four budgets, whose clock falls behind true time by jumps
// of up to an hour (true time also leaps past the sweep period, and new
// keys make the shards sweep), no budget gets more requests than the same
// limiter fed true time.
func TestLocalLimiterBackwardClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	limit := apitoken.Limit{Rate: 1, Burst: 5}
	key := apitoken.TokenKey("t")
	allow := func(l *apitoken.LocalLimiter, k apitoken.LimitKey, at time.Time) bool {
		d, err := l.Allow(ctx, k, limit, at)
		require.NoError(t, err)
		return d.Allowed
	}

	l := apitoken.NewLocalLimiter()
	for i := range limit.Burst {
		require.True(t, allow(l, key, t0), "burst request %d", i)
	}
	extra := 0
	for i := range 1000 {
		if allow(l, key, t0.Add(-time.Hour+time.Duration(i)*3600*time.Millisecond)) {
			extra++
		}
	}
	assert.Zero(t, extra, "requests allowed in the hour before the spent budget's instant")
	assert.False(t, allow(l, key, t0), "at T again")
	assert.False(t, allow(l, key, t0.Add(999*time.Millisecond)), "at T+999ms")
	assert.True(t, allow(l, key, t0.Add(time.Second)), "at T+1s: one refilled")
	assert.False(t, allow(l, key, t0.Add(time.Second)), "at T+1s: only one")

	keys := []apitoken.LimitKey{apitoken.TokenKey("a"), apitoken.UserKey("a"), apitoken.TokenKey("b"), apitoken.UserKey("c")}
	for walk := range 20 {
		r := rand.New(rand.NewPCG(32, uint64(walk)))
		jumped, steady := apitoken.NewLocalLimiter(), apitoken.NewLocalLimiter()
		now, behind := t0, time.Duration(0) // true time, and how far the clock is behind it
		got, ref := map[apitoken.LimitKey]int{}, map[apitoken.LimitKey]int{}
		jumps := 0
		for i := range 1000 {
			switch n := r.IntN(100); {
			case n < 5:
				behind += time.Duration(r.Int64N(int64(time.Hour)))
				jumps++
			case n < 7:
				now = now.Add(time.Minute + time.Duration(r.Int64N(int64(time.Minute)))) // past a sweep
			default:
				now = now.Add(time.Duration(r.Int64N(int64(200 * time.Millisecond)))) // faster than the rate: budgets run dry
			}
			k := keys[r.IntN(len(keys))]
			if i%50 == 0 { // new keys, so that sweeps happen
				k = apitoken.TokenKey(fmt.Sprint("new", i))
			}
			if allow(jumped, k, now.Add(-behind)) {
				got[k]++
			}
			if allow(steady, k, now) {
				ref[k]++
			}
		}
		require.Positive(t, jumps)
		for _, k := range keys {
			assert.LessOrEqual(t, got[k], ref[k], "walk %d, %v: allowed with a clock that jumps back vs true time", walk, k)
		}
	}
}

// TestBudgetsMixedRequests is item 34 on the Validator with a LocalLimiter:
// one user with three user tokens, which share the user's budget U (host
// logins charge it too), and three org tokens with a budget T each (one
// whose ID is the user's, so a limiter that mixed up the two kinds of
// budget would show). 1,000 mixed requests on a fake clock, with requests
// the token may not make (full access on a read-only token, an address
// outside its filter) among them. Every decision equals that of an
// independent token bucket per budget (x/time/rate) fed only the requests
// that budget should count: so the user side and each org token stay
// within burst + rate·elapsed, and a request denied by one budget, or
// refused before the limit, consumes 0 of any other.
func TestBudgetsMixedRequests(t *testing.T) {
	t.Parallel()
	userLimit := apitoken.Limit{Rate: 2, Burst: 6}
	tokenLimit := apitoken.Limit{Rate: 1, Burst: 3}
	pol := testPolicy()
	pol.UserRateLimit, pol.OrgRateLimit = userLimit, tokenLimit
	lim := apitoken.NewLocalLimiter()
	e := newEnv(t, pol, apitoken.WithLimiter(lim))
	ctx := context.Background()

	var orgs []string
	var orgIDs []string
	for range 3 {
		s, tok := e.issue(t, orgSpec())
		orgs, orgIDs = append(orgs, s), append(orgIDs, tok.ID)
	}
	user := orgIDs[0] // the user's ID is an org token's
	e.dir.set(user, "org_1", &apitoken.Membership{Roles: []string{"observer"}})
	var users []string
	for i := range 3 {
		spec := apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user, Name: fmt.Sprint("laptop", i)}
		if i == 2 {
			spec.IPPrefixes = []string{"10.0.0.0/8"}
		}
		s, _ := e.issue(t, spec)
		users = append(users, s)
	}

	bucket := func(l apitoken.Limit) *rate.Limiter { return rate.NewLimiter(rate.Limit(l.Rate), l.Burst) }
	userModel := bucket(userLimit)
	orgModels := []*rate.Limiter{bucket(tokenLimit), bucket(tokenLimit), bucket(tokenLimit)}
	userAllowed, orgAllowed := 0, make([]int, 3)
	refused, userDenied, orgDenied := 0, 0, 0
	r := rand.New(rand.NewPCG(34, 1))
	write := apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessFull}
	outside := readDev
	outside.IP = netip.MustParseAddr("192.0.2.1")
	for i := range 1000 {
		e.clock.Advance(time.Duration(r.Int64N(int64(100 * time.Millisecond)))) // 20/s: every budget runs dry
		now := e.clock.Now()
		var err error
		var model *rate.Limiter
		var counted *int
		switch n := r.IntN(10); {
		case n < 3: // an org token
			j := r.IntN(3)
			_, err = e.v.Validate(ctx, orgs[j], readDev)
			model, counted = orgModels[j], &orgAllowed[j]
		case n < 6: // a user token
			_, err = e.v.Validate(ctx, users[r.IntN(3)], readDev)
			model, counted = userModel, &userAllowed
		case n < 7: // a host login, charged to the user's budget
			d, lerr := lim.Allow(ctx, apitoken.UserKey(user), userLimit, now)
			require.NoError(t, lerr)
			if !d.Allowed {
				err = apitoken.ErrRateLimited
			}
			model, counted = userModel, &userAllowed
		case n < 8: // write access the observer role lacks
			tok := []string{orgs[r.IntN(3)], users[r.IntN(3)]}[r.IntN(2)]
			_, err = e.v.Validate(ctx, tok, write)
			require.ErrorIs(t, err, apitoken.ErrForbidden, "request %d", i)
			refused++
			continue
		default: // the filtered user token from outside its filter
			_, err = e.v.Validate(ctx, users[2], outside)
			require.ErrorIs(t, err, apitoken.ErrIPNotAllowed, "request %d", i)
			refused++
			continue
		}
		want := model.AllowN(now, 1)
		if err != nil {
			require.ErrorIs(t, err, apitoken.ErrRateLimited, "request %d", i)
		}
		require.Equal(t, want, err == nil, "request %d at %v: allowed %v, its budget's own bucket says %v", i, now.Sub(t0), err == nil, want)
		switch {
		case err == nil:
			*counted++
		case model == userModel:
			userDenied++
		default:
			orgDenied++
		}
	}
	elapsed := e.clock.Now().Sub(t0).Seconds()
	bound := func(l apitoken.Limit) int { return l.Burst + int(float64(l.Rate)*elapsed) }
	assert.LessOrEqual(t, userAllowed, bound(userLimit), "the user's three tokens and logins")
	for j, n := range orgAllowed {
		assert.LessOrEqual(t, n, bound(tokenLimit), "org token %d", j)
		assert.Positive(t, n, "org token %d", j)
	}
	assert.Positive(t, refused)
	assert.Positive(t, userDenied, "user-side requests denied by the limit")
	assert.Positive(t, orgDenied, "org-token requests denied by the limit")
	t.Logf("%.0f s: user side %d allowed (bound %d), %d denied; org tokens %v allowed (bound %d each), %d denied; %d refused before the limit",
		elapsed, userAllowed, bound(userLimit), userDenied, orgAllowed, bound(tokenLimit), orgDenied, refused)
}
