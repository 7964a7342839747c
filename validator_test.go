package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

func TestValidateOrgToken(t *testing.T) {
	e := newEnv(t, testPolicy())
	secret, tok := e.issue(t, orgSpec())
	p, err := e.v.Validate(context.Background(), secret, readDev)
	if err != nil {
		t.Fatalf("Validate = %v, want nil", err)
	}
	if p.TokenID != tok.ID || p.Kind != apitoken.KindOrg || p.OrgID != "org_1" || p.OwnerID != "org_1" || p.UserID != "" || p.Hint != tok.Hint {
		t.Errorf("Principal = %+v, want token %s of org_1", p, tok.ID)
	}
	if got := p.Access("devices"); got != apitoken.AccessRead {
		t.Errorf("Access(devices) = %v, want read", got)
	}
	if !p.HasRole("observer") || p.HasRole("admin") {
		t.Errorf("HasRole: observer %v admin %v, want true false", p.HasRole("observer"), p.HasRole("admin"))
	}
}

// TestValidateErrors checks each outcome, in the documented order, and that
// each error matches its sentinel and no other.
func TestValidateErrors(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}
	pol.MaxRateLimit = apitoken.Limit{Rate: 1, Burst: 5} // the ceiling of a token's own limit
	tests := []struct {
		name    string
		spec    func(*apitoken.Spec)
		prepare func(e *env, secret string, tok *apitoken.Token) string // returns the presented token
		req     apitoken.Request
		want    error
	}{
		{name: "ok", want: nil},
		{name: "garbage", prepare: func(*env, string, *apitoken.Token) string { return "hello" }, want: apitoken.ErrMalformed},
		{name: "other prefix", prepare: func(*env, string, *apitoken.Token) string {
			return tokMake("acmf", tokFixedBody) // well formed, another policy's prefix
		}, want: apitoken.ErrMalformed},
		{name: "typo", prepare: func(_ *env, s string, _ *apitoken.Token) string {
			b := []byte(s)
			b[10] ^= 1 // '0'<->'1', 'A'<->'@'... keep it base62 or not: malformed either way
			return string(b)
		}, want: apitoken.ErrMalformed},
		{name: "unknown", prepare: func(e *env, _ string, _ *apitoken.Token) string {
			other, _ := apitoken.NewIssuer(memstore.New(), testPolicy())
			sec, _, _ := other.Issue(context.Background(), orgSpec())
			return sec.Reveal()
		}, want: apitoken.ErrUnknown},
		{name: "deleted", prepare: func(e *env, s string, tok *apitoken.Token) string {
			require.NoError(t, e.iss.Delete(context.Background(), tok.ID))
			return s
		}, want: apitoken.ErrUnknown},
		{name: "other org", req: apitoken.Request{IP: officeIP, Org: "org_2", API: "devices", Access: apitoken.AccessRead}, want: apitoken.ErrUnknown},
		{name: "revoked", prepare: func(e *env, s string, tok *apitoken.Token) string {
			require.NoError(t, e.iss.Revoke(context.Background(), tok.ID))
			return s
		}, want: apitoken.ErrRevoked},
		{name: "revoked and expired", prepare: func(e *env, s string, tok *apitoken.Token) string {
			require.NoError(t, e.iss.Revoke(context.Background(), tok.ID))
			e.clock.Advance(24 * time.Hour)
			return s
		}, spec: func(s *apitoken.Spec) { s.Lifetime = apitoken.Hours(1) }, want: apitoken.ErrRevoked},
		{name: "expired", spec: func(s *apitoken.Spec) { s.Lifetime = apitoken.Minutes(30) }, prepare: func(e *env, s string, _ *apitoken.Token) string {
			e.clock.Advance(30 * time.Minute)
			return s
		}, want: apitoken.ErrExpired},
		{name: "just before expiry", spec: func(s *apitoken.Spec) { s.Lifetime = apitoken.Minutes(30) }, prepare: func(e *env, s string, _ *apitoken.Token) string {
			e.clock.Advance(30*time.Minute - time.Nanosecond)
			return s
		}, want: nil},
		{name: "idle, never used", prepare: func(e *env, s string, _ *apitoken.Token) string {
			e.clock.Advance(apitoken.DefaultIdleTimeout + time.Second)
			return s
		}, want: apitoken.ErrIdle},
		{name: "idle, used long ago", prepare: func(e *env, s string, _ *apitoken.Token) string {
			e.clock.Advance(10 * 24 * time.Hour)
			mustValidate(t, e, s)
			require.NoError(t, e.v.Flush(context.Background()))
			e.clock.Advance(apitoken.DefaultIdleTimeout + time.Second)
			return s
		}, want: apitoken.ErrIdle},
		{name: "not idle, used recently", prepare: func(e *env, s string, _ *apitoken.Token) string {
			e.clock.Advance(80 * 24 * time.Hour)
			mustValidate(t, e, s)
			require.NoError(t, e.v.Flush(context.Background()))
			e.clock.Advance(80 * 24 * time.Hour)
			return s
		}, want: nil},
		{name: "not idle, use not yet flushed", prepare: func(e *env, s string, _ *apitoken.Token) string {
			e.clock.Advance(80 * 24 * time.Hour)
			mustValidate(t, e, s)
			e.clock.Advance(80 * 24 * time.Hour)
			return s
		}, want: nil},
		{name: "named filter denies", spec: func(s *apitoken.Spec) { s.IPFilter = "office" },
			req: apitoken.Request{IP: otherIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead}, want: apitoken.ErrIPNotAllowed},
		{name: "named filter allows", spec: func(s *apitoken.Spec) { s.IPFilter = "office" }, want: nil},
		{name: "IPv4-mapped IPv6 matches IPv4 prefix", spec: func(s *apitoken.Spec) { s.IPFilter = "office" },
			req: apitoken.Request{IP: netip.MustParseAddr("::ffff:10.1.2.3"), Org: "org_1", API: "devices", Access: apitoken.AccessRead}, want: nil},
		{name: "IPv6 in filter", spec: func(s *apitoken.Spec) { s.IPFilter = "office" },
			req: apitoken.Request{IP: netip.MustParseAddr("2001:db8::1"), Org: "org_1", API: "devices", Access: apitoken.AccessRead}, want: nil},
		{name: "missing address denied", spec: func(s *apitoken.Spec) { s.IPFilter = "office" },
			req: apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead}, want: apitoken.ErrIPNotAllowed},
		{name: "inline prefixes", spec: func(s *apitoken.Spec) { s.IPPrefixes = []string{"192.0.2.0/24"} },
			req: apitoken.Request{IP: otherIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead}, want: nil},
		{name: "inline prefixes deny", spec: func(s *apitoken.Spec) { s.IPPrefixes = []string{"192.0.2.0/24"} },
			want: apitoken.ErrIPNotAllowed},
		{name: "needs full", req: apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessFull}, want: apitoken.ErrForbidden},
		{name: "other API", req: apitoken.Request{IP: officeIP, Org: "org_1", API: "billing", Access: apitoken.AccessRead}, want: apitoken.ErrForbidden},
		{name: "direct grant", spec: func(s *apitoken.Spec) { s.Grants = apitoken.Grants{"billing": apitoken.AccessFull} },
			req: apitoken.Request{IP: officeIP, Org: "org_1", API: "billing", Access: apitoken.AccessFull}, want: nil},
		{name: "resource outside scope", spec: func(s *apitoken.Spec) { s.Resources = []string{"site-a"} },
			req: apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead, Resource: "site-b"}, want: apitoken.ErrForbidden},
		{name: "resource inside scope", spec: func(s *apitoken.Spec) { s.Resources = []string{"site-a"} },
			req: apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead, Resource: "site-a"}, want: nil},
		{name: "rate limited", prepare: func(e *env, s string, _ *apitoken.Token) string {
			mustValidate(t, e, s) // burst of 1 used
			return s
		}, want: apitoken.ErrRateLimited},
		{name: "own limit overrides default", spec: func(s *apitoken.Spec) { s.RateLimit = &apitoken.Limit{Rate: 1, Burst: 5} }, prepare: func(e *env, s string, _ *apitoken.Token) string {
			mustValidate(t, e, s)
			return s
		}, want: nil},
		{name: "IP checked before access", spec: func(s *apitoken.Spec) { s.IPFilter = "office" },
			req: apitoken.Request{IP: otherIP, Org: "org_1", API: "billing", Access: apitoken.AccessFull}, want: apitoken.ErrIPNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter()))
			spec := orgSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			secret, tok := e.issue(t, spec)
			presented := secret
			if tc.prepare != nil {
				presented = tc.prepare(e, secret, tok)
			}
			req := tc.req
			if req == (apitoken.Request{}) {
				req = readDev
			}
			p, err := e.v.Validate(context.Background(), presented, req)
			if tc.want == nil {
				if err != nil || p == nil {
					t.Fatalf("Validate = %v, %v; want a principal", p, err)
				}
				return
			}
			if p != nil || !only(err, tc.want) {
				t.Fatalf("Validate = %v, %v; want only %v", p, err, tc.want)
			}
			var rl *apitoken.RateLimitError
			if errors.As(err, &rl) && rl.RetryAfter() <= 0 {
				t.Errorf("RetryAfter = %v, want > 0", rl.RetryAfter())
			}
		})
	}
}

func mustValidate(t testing.TB, e *env, s string) {
	t.Helper()
	_, err := e.v.Validate(context.Background(), s, readDev)
	require.NoError(t, err, "Validate")
}

func TestSentinelsDistinct(t *testing.T) {
	for i, a := range allSentinels {
		for j, b := range allSentinels {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}

// TestMalformedNeverReachesStore changes every character of a token in turn:
// each variant is ErrMalformed and the store is never asked.
func TestMalformedNeverReachesStore(t *testing.T) {
	e := newEnv(t, testPolicy())
	secret, _ := e.issue(t, orgSpec())
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	n := 0
	for i := len("acme_"); i < len(secret); i++ {
		for _, c := range []byte(alphabet) {
			if c == secret[i] {
				continue
			}
			b := []byte(secret)
			b[i] = c
			if _, err := e.v.Validate(context.Background(), string(b), readDev); !errors.Is(err, apitoken.ErrMalformed) {
				t.Fatalf("Validate(typo at %d) = %v, want ErrMalformed", i, err)
			}
			n++
		}
	}
	if got := e.store.getByHash.Load(); got != 0 {
		t.Errorf("store lookups for %d malformed tokens = %d, want 0", n, got)
	}
}

func TestRevokeAndDeleteTakeEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s1, t1 := e.issue(t, orgSpec())
	s2, t2 := e.issue(t, orgSpec())
	mustValidate(t, e, s1)
	mustValidate(t, e, s2)
	require.NoError(t, e.iss.Revoke(ctx, t1.ID))
	require.NoError(t, e.iss.Delete(ctx, t2.ID))
	if _, err := e.v.Validate(ctx, s1, readDev); !errors.Is(err, apitoken.ErrRevoked) {
		t.Errorf("after Revoke: Validate = %v, want ErrRevoked", err)
	}
	if _, err := e.v.Validate(ctx, s2, readDev); !errors.Is(err, apitoken.ErrUnknown) {
		t.Errorf("after Delete: Validate = %v, want ErrUnknown", err)
	}
}

// TestRevokeRacingValidate: 1,000 goroutines validate one token while
// Revoke runs. Every goroutine has succeeded once before Revoke starts, and
// each goes on until it has started 5 validations after Revoke returned;
// every one of those must be refused with ErrRevoked, and any other outcome
// is an error. The canary runs the same check over a store that
// acknowledges Revoke before applying it, and must see it fail.
func TestRevokeRacingValidate(t *testing.T) {
	const validators, after = 1000, 5
	t.Run("memstore", func(t *testing.T) {
		e := newEnv(t, testPolicy())
		s, tok := e.issue(t, orgSpec())
		r := revokeRace(t, e.v, func() error { return e.iss.Revoke(t.Context(), tok.ID) }, s, validators, after)
		assert.Zero(t, r.acceptedAfter, "validations started after Revoke returned that succeeded")
		assert.Empty(t, r.unexpected, "errors other than ErrRevoked")
		assert.GreaterOrEqual(t, r.before, int64(validators), "successful validations before Revoke")
		assert.GreaterOrEqual(t, r.refusedAfter, int64(validators*after), "validations refused after Revoke returned")
		t.Logf("%d validators: %d successes before Revoke returned, %d validations after it, all refused",
			validators, r.before, r.refusedAfter)
	})
	t.Run("canary: Revoke acknowledged before it applies", func(t *testing.T) {
		mem := memstore.New()
		lag := &lateRevokeStore{Store: mem, lag: 200}
		iss, err := apitoken.NewIssuer(lag, testPolicy())
		require.NoError(t, err)
		v, err := newValidator(t, lag, testPolicy())
		require.NoError(t, err)
		sec, tok, err := iss.Issue(t.Context(), orgSpec())
		require.NoError(t, err)
		r := revokeRace(t, v, func() error { return iss.Revoke(t.Context(), tok.ID) }, sec.Reveal(), 50, after)
		assert.Positive(t, r.acceptedAfter, "the check missed successes after a Revoke that returned before it applied")
	})
}

// revokeRaceResult counts the outcomes of revokeRace.
type revokeRaceResult struct {
	before, acceptedAfter, refusedAfter int64
	unexpected                          []string
}

// revokeRace starts n goroutines validating secret, waits until each has
// succeeded once, releases them all and calls revoke, and lets each run
// until it has started after validations once revoke returned. A validation counts as "after"
// when the flag set after revoke returned was already set when it started.
func revokeRace(t *testing.T, v *apitoken.Validator, revoke func() error, secret string, n, after int) revokeRaceResult {
	t.Helper()
	var (
		revoked                             atomic.Bool
		release                             = make(chan struct{})
		ready, wg                           sync.WaitGroup
		before, acceptedAfter, refusedAfter atomic.Int64
		mu                                  sync.Mutex
		unexpected                          []string
	)
	ready.Add(n)
	for range n {
		wg.Go(func() {
			readied := false
			defer func() {
				if !readied {
					ready.Done()
				}
			}()
			for done := 0; done < after; {
				was := revoked.Load() // read before the validation starts
				_, err := v.Validate(context.Background(), secret, readDev)
				switch {
				case was && err == nil:
					acceptedAfter.Add(1)
				case was && errors.Is(err, apitoken.ErrRevoked):
					refusedAfter.Add(1)
				case err == nil:
					before.Add(1)
				case !errors.Is(err, apitoken.ErrRevoked):
					mu.Lock()
					unexpected = append(unexpected, err.Error())
					mu.Unlock()
					return
				}
				if !readied && err == nil {
					readied = true
					ready.Done()
					<-release // spin no more until all are ready
				}
				if was {
					done++
				}
			}
		})
	}
	ready.Wait() // every goroutine has validated once: all are running
	close(release)
	require.NoError(t, revoke())
	revoked.Store(true)
	wg.Wait()
	return revokeRaceResult{before.Load(), acceptedAfter.Load(), refusedAfter.Load(), unexpected}
}

// lateRevokeStore is a broken store for the canary: Revoke returns at once
// and the revocation applies only after lag more hash lookups.
type lateRevokeStore struct {
	apitoken.Store
	lag     int
	mu      sync.Mutex
	pending string
	reads   int
}

func (s *lateRevokeStore) Revoke(_ context.Context, id string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending, s.reads = id, 0
	return nil
}

func (s *lateRevokeStore) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	s.mu.Lock()
	if s.pending != "" {
		if s.reads++; s.reads >= s.lag {
			if err := s.Store.Revoke(ctx, s.pending, t0); err != nil {
				s.mu.Unlock()
				return nil, err
			}
			s.pending = ""
		}
	}
	s.mu.Unlock()
	return s.Store.GetByHash(ctx, h)
}

// TestLastUsedBatched: 1,000 validations within a flush interval cost no
// store write until the flush, and then exactly one.
func TestLastUsedBatched(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())
	for i := range 1000 {
		e.clock.Advance(time.Millisecond)
		if _, err := e.v.Validate(ctx, s, readDev); err != nil {
			t.Fatalf("Validate #%d = %v", i, err)
		}
	}
	if got := e.store.touches.Load(); got != 0 {
		t.Fatalf("store writes before flush = %d, want 0", got)
	}
	require.NoError(t, e.v.Flush(ctx))
	if got, touched := e.store.touches.Load(), e.store.touched.Load(); got != 1 || touched != 1 {
		t.Fatalf("after flush: %d writes for %d tokens, want 1 for 1", got, touched)
	}
	got, err := e.iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	if want := e.clock.Now(); !got.LastUsedAt.Equal(want) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, want)
	}
	require.NoError(t, e.v.Flush(ctx))
	if got := e.store.touches.Load(); got != 1 {
		t.Errorf("writes after an empty flush = %d, want 1", got)
	}
}

func TestFlushFailureKeepsUses(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())
	mustValidate(t, e, s)
	e.store.down.Store(true)
	if err := e.v.Flush(ctx); err == nil {
		t.Fatal("Flush with the store down = nil, want error")
	}
	e.store.down.Store(false)
	require.NoError(t, e.v.Flush(ctx))
	got, err := e.iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	if !got.LastUsedAt.Equal(t0) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, t0)
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, _ := e.issue(t, orgSpec())
	e.store.down.Store(true)
	p, err := e.v.Validate(ctx, s, readDev)
	if p != nil || !only(err, apitoken.ErrStoreUnavailable) {
		t.Fatalf("store down: Validate = %v, %v; want only ErrStoreUnavailable", p, err)
	}
	e.store.down.Store(false)
	if _, err := e.v.Validate(ctx, s, readDev); err != nil {
		t.Fatalf("store back: Validate = %v, want nil", err)
	}
}

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, apitoken.LimitKey, apitoken.Limit, time.Time) (apitoken.Decision, error) {
	return apitoken.Decision{}, errDown
}

func TestLimiterDownFailsClosed(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: 10, Burst: 10}
	e := newEnv(t, pol, apitoken.WithLimiter(failingLimiter{}))
	s, _ := e.issue(t, orgSpec())
	if p, err := e.v.Validate(context.Background(), s, readDev); p != nil || !only(err, apitoken.ErrStoreUnavailable) {
		t.Fatalf("Validate = %v, %v; want only ErrStoreUnavailable", p, err)
	}
}

func userSpec(user string) apitoken.Spec {
	return apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user, Name: "laptop"}
}

func TestUserTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	e.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"operator"}})
	e.dir.set("u1", "org_2", &apitoken.Membership{Roles: []string{"observer"}})
	s, _ := e.issue(t, userSpec("u1"))
	fullDev := func(org string) apitoken.Request {
		return apitoken.Request{IP: officeIP, Org: org, API: "devices", Access: apitoken.AccessFull}
	}

	p, err := e.v.Validate(ctx, s, fullDev("org_1"))
	if err != nil || p.UserID != "u1" || p.OrgID != "org_1" || !p.HasRole("operator") {
		t.Fatalf("org_1: Validate = %+v, %v; want user u1 acting as operator in org_1", p, err)
	}
	if _, err := e.v.Validate(ctx, s, fullDev("org_2")); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("org_2 (observer) full access: Validate = %v, want ErrForbidden", err)
	}
	if _, err := e.v.Validate(ctx, s, apitoken.Request{Org: "org_2", API: "devices", Access: apitoken.AccessRead}); err != nil {
		t.Errorf("org_2 read: Validate = %v, want nil", err)
	}
	if _, err := e.v.Validate(ctx, s, fullDev("org_3")); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("org_3 (no access): Validate = %v, want ErrForbidden", err)
	}
	// Privileges are the user's current ones.
	e.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"observer"}})
	if _, err := e.v.Validate(ctx, s, fullDev("org_1")); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("after demotion: Validate = %v, want ErrForbidden", err)
	}
	e.dir.set("u1", "org_1", nil)
	if _, err := e.v.Validate(ctx, s, readDev); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("after removal: Validate = %v, want ErrForbidden", err)
	}
	e.dir.mu.Lock()
	e.dir.err = errDown
	e.dir.mu.Unlock()
	if p, err := e.v.Validate(ctx, s, apitoken.Request{Org: "org_2"}); p != nil || !only(err, apitoken.ErrStoreUnavailable) {
		t.Errorf("directory down: Validate = %v, %v; want only ErrStoreUnavailable", p, err)
	}
}

func TestUserTokenScopeNarrows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	e.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"admin"}, Resources: []string{"site-a", "site-b"}})
	spec := userSpec("u1")
	spec.Grants = apitoken.Grants{"devices": apitoken.AccessRead}
	spec.Resources = []string{"site-a"}
	s, _ := e.issue(t, spec)
	tests := []struct {
		req  apitoken.Request
		want error
	}{
		{apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead, Resource: "site-a"}, nil},
		{apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull, Resource: "site-a"}, apitoken.ErrForbidden},
		{apitoken.Request{Org: "org_1", API: "billing", Access: apitoken.AccessRead}, apitoken.ErrForbidden},
		{apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead, Resource: "site-b"}, apitoken.ErrForbidden},
	}
	for _, tc := range tests {
		if _, err := e.v.Validate(ctx, s, tc.req); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("Validate(%+v) = %v, want %v", tc.req, err, tc.want)
		}
	}
	// The returned Principal keeps the narrowing after later validations.
	p, err := e.v.Validate(ctx, s, apitoken.Request{Org: "org_1"})
	require.NoError(t, err)
	other, _ := e.issue(t, orgSpec())
	if _, err := e.v.Validate(ctx, other, apitoken.Request{Org: "org_1"}); err != nil {
		t.Fatal(err)
	}
	if got := p.Access("billing"); got != apitoken.AccessNone {
		t.Errorf("Principal.Access(billing) after another validation = %v, want none", got)
	}
	if p.AllowsResource("site-b") {
		t.Error("Principal.AllowsResource(site-b) after another validation = true, want false")
	}
}

func TestUserTokensWithoutDirectoryFailClosed(t *testing.T) {
	store := memstore.New()
	iss, _ := apitoken.NewIssuer(store, testPolicy())
	v, err := newValidator(t, store, testPolicy())
	require.NoError(t, err)
	s, _, err := iss.Issue(context.Background(), userSpec("u1"))
	require.NoError(t, err)
	if _, err := v.Validate(context.Background(), s.Reveal(), apitoken.Request{}); !errors.Is(err, apitoken.ErrForbidden) {
		t.Errorf("Validate = %v, want ErrForbidden", err)
	}
}

// TestRateLimitBudgets: all tokens of one user share one budget; org tokens
// have one each.
func TestRateLimitBudgets(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.UserRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 3}
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 2}
	lim := apitoken.NewLocalLimiter()
	e := newEnv(t, pol, apitoken.WithLimiter(lim))
	e.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"observer"}})
	u1a, _ := e.issue(t, userSpec("u1"))
	u1b, _ := e.issue(t, userSpec("u1"))
	count := func(tokens ...string) (ok int) {
		for range 5 {
			for _, s := range tokens {
				if _, err := e.v.Validate(ctx, s, readDev); err == nil {
					ok++
				} else if !errors.Is(err, apitoken.ErrRateLimited) {
					t.Fatalf("Validate = %v", err)
				}
			}
		}
		return ok
	}
	if got := count(u1a, u1b); got != 3 {
		t.Errorf("two tokens of one user: %d allowed, want 3 (one shared burst)", got)
	}
	// The host can charge the same budget, e.g. for logins.
	if d, err := lim.Allow(ctx, apitoken.UserKey("u1"), pol.UserRateLimit, e.clock.Now()); err != nil || d.Allowed {
		t.Errorf("host charge to exhausted user budget = %+v, %v; want denied", d, err)
	}
	o1, _ := e.issue(t, orgSpec())
	o2, _ := e.issue(t, orgSpec())
	if got := count(o1, o2); got != 4 {
		t.Errorf("two org tokens: %d allowed, want 4 (a burst each)", got)
	}
	// Time refills the bucket.
	e.clock.Advance(time.Hour)
	if got := count(o1); got != 1 {
		t.Errorf("after an hour: %d allowed, want 1", got)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldKey := []byte("old-key-old-key-old-key-old-key-")
	newKey := []byte("new-key-new-key-new-key-new-key-")
	store := memstore.New()
	issOld, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithHashKeys(oldKey))
	require.NoError(t, err)
	s, tok, err := issOld.Issue(ctx, orgSpec())
	require.NoError(t, err)
	vNew, err := newValidator(t, store, testPolicy(), apitoken.WithHashKeys(newKey))
	require.NoError(t, err)
	if _, err := vNew.Validate(ctx, s.Reveal(), readDev); !errors.Is(err, apitoken.ErrUnknown) {
		t.Fatalf("new key only: Validate = %v, want ErrUnknown", err)
	}
	vRing, err := newValidator(t, store, testPolicy(), apitoken.WithHashKeys(newKey, oldKey))
	require.NoError(t, err)
	p, err := vRing.Validate(ctx, s.Reveal(), readDev)
	if err != nil || !p.KeyOutdated {
		t.Fatalf("ring: Validate = %+v, %v; want KeyOutdated principal", p, err)
	}
	issNew, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithHashKeys(newKey, oldKey))
	require.NoError(t, err)
	require.NoError(t, issNew.Rehash(ctx, s.Reveal()))
	p, err = vNew.Validate(ctx, s.Reveal(), readDev)
	if err != nil || p.KeyOutdated || p.TokenID != tok.ID {
		t.Fatalf("after Rehash: Validate = %+v, %v; want current-key principal", p, err)
	}
	if _, err := newValidator(t, store, testPolicy(), apitoken.WithHashKeys([]byte("short"))); err == nil {
		t.Error("NewValidator with a 5-byte key = nil error, want error")
	}
}

func TestRegenerateGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	old, tok := e.issue(t, orgSpec())
	s, tok2, err := e.iss.Regenerate(ctx, tok.ID, apitoken.Months(3), apitoken.WithGrace(time.Hour))
	require.NoError(t, err)
	if tok2.ID != tok.ID || tok2.Hint == tok.Hint || s.Reveal() == old {
		t.Fatalf("Regenerate kept ID %v, changed hint %v, new secret %v", tok2.ID == tok.ID, tok2.Hint != tok.Hint, s.Reveal() != old)
	}
	if want := time.Date(2026, 4, 30, 12, 0, 0, 0, time.UTC); !tok2.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v (3 months from 31 Jan)", tok2.ExpiresAt, want)
	}
	for _, sec := range []string{old, s.Reveal()} {
		if _, err := e.v.Validate(ctx, sec, readDev); err != nil {
			t.Errorf("within grace: Validate = %v, want nil", err)
		}
	}
	e.clock.Advance(time.Hour)
	if _, err := e.v.Validate(ctx, old, readDev); !errors.Is(err, apitoken.ErrExpired) {
		t.Errorf("after grace: old secret Validate = %v, want ErrExpired", err)
	}
	if _, err := e.v.Validate(ctx, s.Reveal(), readDev); err != nil {
		t.Errorf("after grace: new secret Validate = %v, want nil", err)
	}
	// Without grace the old secret stops at once.
	s3, _, err := e.iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{})
	require.NoError(t, err)
	if _, err := e.v.Validate(ctx, s.Reveal(), readDev); !errors.Is(err, apitoken.ErrUnknown) {
		t.Errorf("no grace: old secret Validate = %v, want ErrUnknown", err)
	}
	if _, err := e.v.Validate(ctx, s3.Reveal(), readDev); err != nil {
		t.Errorf("no grace: new secret Validate = %v, want nil", err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())
	mustValidate(t, e, s)
	require.NoError(t, e.v.Close(ctx))
	require.NoError(t, e.v.Close(ctx))
	if _, err := e.v.Validate(ctx, s, readDev); !errors.Is(err, apitoken.ErrClosed) {
		t.Errorf("after Close: Validate = %v, want ErrClosed", err)
	}
	got, err := e.iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	if !got.LastUsedAt.Equal(t0) {
		t.Errorf("Close did not flush: LastUsedAt = %v, want %v", got.LastUsedAt, t0)
	}
}

// TestCloseKeepsUseOfValidationUnderWay: a validation that passed its
// closed check before Close, and notes its use after Close has flushed,
// still gets the use written.
func TestCloseKeepsUseOfValidationUnderWay(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())
	entered, release := make(chan struct{}), make(chan struct{})
	hold := func() { close(entered); <-release }
	e.store.beforeRead.Store(&hold)
	done := make(chan error)
	go func() {
		_, err := e.v.Validate(ctx, s, readDev)
		done <- err
	}()
	<-entered // past the closed check, inside the store read
	e.store.beforeRead.Store(nil)
	require.NoError(t, e.v.Close(ctx)) // nothing noted yet: flushes nothing
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("validation under way at Close = %v, want success", err)
	}
	got, err := e.iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	if !got.LastUsedAt.Equal(t0) {
		t.Errorf("use noted after Close's flush was lost: LastUsedAt = %v, want %v", got.LastUsedAt, t0)
	}
}

// TestUseMarkerRecordsUsesAtOnce: with a UseMarker store a validation
// writes its use at once (nothing to flush), once per flush interval; if
// MarkUsed fails, the use is collected for Touch instead.
func TestUseMarkerRecordsUsesAtOnce(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	store := &markingStore{faultStore: &faultStore{Store: memstore.New()}}
	iss, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithClock(clock.Now))
	require.NoError(t, err)
	v, err := newValidator(t, store, testPolicy(), apitoken.WithClock(clock.Now))
	require.NoError(t, err)
	s, tok, err := iss.Issue(ctx, orgSpec())
	require.NoError(t, err)
	lastUsed := func() time.Time {
		got, err := iss.Get(ctx, tok.ID)
		require.NoError(t, err)
		return got.LastUsedAt
	}
	for range 3 {
		if _, err := v.Validate(ctx, s.Reveal(), readDev); err != nil {
			t.Fatalf("Validate = %v", err)
		}
	}
	if got := lastUsed(); !got.Equal(t0) {
		t.Errorf("LastUsedAt before any flush = %v, want %v (written at once)", got, t0)
	}
	if n := store.marks.Load(); n != 1 {
		t.Errorf("MarkUsed calls for 3 uses within a flush interval = %d, want 1", n)
	}
	clock.Advance(apitoken.DefaultFlushInterval)
	store.failMarks.Store(true)
	if _, err := v.Validate(ctx, s.Reveal(), readDev); err != nil {
		t.Fatalf("Validate with MarkUsed failing = %v, want success", err)
	}
	if got := lastUsed(); !got.Equal(t0) {
		t.Errorf("LastUsedAt after a failed MarkUsed = %v, want %v until a flush", got, t0)
	}
	require.NoError(t, v.Flush(ctx))
	if got, want := lastUsed(), t0.Add(apitoken.DefaultFlushInterval); !got.Equal(want) || store.touched.Load() != 1 {
		t.Errorf("after Flush: LastUsedAt = %v, touched %d; want %v, 1 (the failed mark kept for Touch)", got, store.touched.Load(), want)
	}
}

// TestFlushesByItself: a Validator nobody runs writes its collected uses
// every flush interval, and Close writes the rest and stops the loop.
func TestFlushesByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &faultStore{Store: memstore.New()}
		clock := newClock()
		iss, _ := apitoken.NewIssuer(store, testPolicy(), apitoken.WithClock(clock.Now))
		ticks := make(chan time.Time)
		v, err := newValidator(t, store, testPolicy(), apitoken.WithTicks(ticks),
			apitoken.WithClock(clock.Now), apitoken.WithSingleTenant("org_1"))
		require.NoError(t, err)
		s, _, err := iss.Issue(t.Context(), orgSpec())
		require.NoError(t, err)
		ctx := t.Context()
		for round := int64(1); round <= 3; round++ {
			clock.Advance(apitoken.DefaultFlushInterval) // a use worth writing
			_, err := v.Validate(ctx, s.Reveal(), readDev)
			require.NoError(t, err)
			ticks <- time.Time{} // one flush interval
			synctest.Wait()      // until the loop has flushed and waits again
			require.Equal(t, round, store.touches.Load(), "flushes after %d intervals", round)
		}
		clock.Advance(apitoken.DefaultFlushInterval)
		_, err = v.Validate(ctx, s.Reveal(), readDev)
		require.NoError(t, err)
		require.NoError(t, v.Close(ctx))
		assert.Equal(t, int64(4), store.touches.Load(), "Close writes the last use")
		select {
		case ticks <- time.Time{}:
			t.Error("the flush loop still runs after Close")
		default:
		}
	})
}

func TestValidatorOptions(t *testing.T) {
	store := memstore.New()
	if _, err := newValidator(t, nil, testPolicy()); err == nil {
		t.Error("NewValidator(nil store) = nil error, want error")
	}
	if _, err := newValidator(t, store, apitoken.Policy{Prefix: "Bad"}); !errors.Is(err, apitoken.ErrPolicy) {
		t.Errorf("NewValidator(bad policy) = %v, want ErrPolicy", err)
	}
	for name, opt := range map[string]apitoken.ValidatorOption{
		"zero ServiceOption": apitoken.ServiceOption{},
		"zero KeyOption":     apitoken.KeyOption{},
		"nil option":         nil,
		"no hash keys":       apitoken.WithHashKeys(),
		"nil Limiter":        apitoken.WithLimiter(nil),
	} {
		_, err := newValidator(t, store, testPolicy(), opt)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "apitoken: NewValidator: "), "%s: %v", name, err)
	}
}

// lookupLimiter is a LookupLimiter over memstore and a LocalLimiter that
// counts its round trips.
type lookupLimiter struct {
	*memstore.Store
	lim      *apitoken.LocalLimiter
	combined int
	separate int
	refunds  []apitoken.LimitKey
}

func (s *lookupLimiter) Allow(ctx context.Context, k apitoken.LimitKey, l apitoken.Limit, now time.Time) (apitoken.Decision, error) {
	s.separate++
	return s.lim.Allow(ctx, k, l, now)
}

func (s *lookupLimiter) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	s.separate++
	return s.Store.GetByHash(ctx, h)
}

func (s *lookupLimiter) ReadByHash(ctx context.Context, h apitoken.Hash, dst *apitoken.Token) error {
	s.separate++
	return s.Store.ReadByHash(ctx, h, dst)
}

func (s *lookupLimiter) GetByHashAllow(ctx context.Context, h apitoken.Hash, d apitoken.LimitDefaults, now time.Time) (*apitoken.Token, *apitoken.Decision, error) {
	s.combined++
	t, err := s.Store.GetByHash(ctx, h)
	if err != nil || t.Revoked() || t.Expired(now) {
		return t, nil, err
	}
	key, limit := d.LimitFor(t)
	if limit.IsZero() {
		return t, nil, nil
	}
	dec, err := s.lim.Allow(ctx, key, limit, now)
	return t, &dec, err
}

// Refund records the refund for the test (LocalLimiter has none to call).
func (s *lookupLimiter) Refund(_ context.Context, k apitoken.LimitKey, l apitoken.Limit, _ time.Time) error {
	s.refunds = append(s.refunds, k)
	return nil
}

// TestDecisionIsPlainData: a Decision is exactly its exported fields, so
// hosts can compare one (go-cmp without options, or field by field) and
// build the one they expect; the validation's own instant, which the
// middleware needs, is kept elsewhere.
func TestDecisionIsPlainData(t *testing.T) {
	typ := reflect.TypeFor[apitoken.Decision]()
	for i := range typ.NumField() {
		if f := typ.Field(i); !f.IsExported() {
			t.Errorf("Decision has the unexported field %s", f.Name)
		}
	}
	ctx := context.Background()
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}
	e := newEnv(t, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter()))
	s, _ := e.issue(t, orgSpec())
	same := func(a, b apitoken.Decision) bool {
		eq := a.ResetAt.Equal(b.ResetAt)
		a.ResetAt, b.ResetAt = time.Time{}, time.Time{}
		return eq && a == b
	}
	p, err := e.v.Validate(ctx, s, readDev)
	require.NoError(t, err)
	want := apitoken.Decision{Allowed: true, Limit: pol.OrgRateLimit, ResetAt: t0.Add(time.Hour), ResetAfter: time.Hour}
	if !same(p.Decision, want) {
		t.Errorf("allowed: Decision = %+v, want %+v", p.Decision, want)
	}
	_, err = e.v.Validate(ctx, s, readDev)
	var rl *apitoken.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("second Validate = %v, want a RateLimitError", err)
	}
	want = apitoken.Decision{Limit: pol.OrgRateLimit, ResetAt: t0.Add(time.Hour), ResetAfter: time.Hour, RetryAfter: time.Hour}
	if !same(rl.Decision, want) {
		t.Errorf("denied: Decision = %+v, want %+v", rl.Decision, want)
	}
}

func TestLookupLimiterOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 2}
	s := &lookupLimiter{Store: memstore.New(), lim: apitoken.NewLocalLimiter()}
	iss, _ := apitoken.NewIssuer(s, pol)
	v, err := newValidator(t, s, pol, apitoken.WithLimiter(s))
	require.NoError(t, err)
	sec, _, err := iss.Issue(ctx, orgSpec())
	require.NoError(t, err)
	for i, want := range []error{nil, nil, apitoken.ErrRateLimited} {
		if _, err := v.Validate(ctx, sec.Reveal(), readDev); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("Validate #%d = %v, want %v", i, err, want)
		}
	}
	if s.combined != 3 || s.separate != 0 {
		t.Errorf("round trips: %d combined, %d separate; want 3 and 0", s.combined, s.separate)
	}
	// Given another limiter, the store is only a store.
	v2, _ := newValidator(t, s, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter()))
	if _, err := v2.Validate(ctx, sec.Reveal(), readDev); err != nil {
		t.Fatal(err)
	}
	if s.combined != 3 || s.separate != 1 {
		t.Errorf("with another limiter: %d combined, %d separate; want 3 and 1", s.combined, s.separate)
	}
}

func TestLimitFor(t *testing.T) {
	d := apitoken.LimitDefaults{
		Org:   apitoken.Limit{Rate: 1, Burst: 1},
		User:  apitoken.Limit{Rate: 2, Burst: 2},
		Roles: map[string]apitoken.Limit{"bulk": {Rate: 50, Burst: 50}, "slow": {Rate: 0.5, Burst: 1}},
	}
	own := apitoken.Limit{Rate: 9, Burst: 9}
	tests := []struct {
		name    string
		tok     apitoken.Token
		wantKey apitoken.LimitKey
		want    apitoken.Limit
	}{
		{"org default", apitoken.Token{ID: "t1", Kind: apitoken.KindOrg}, apitoken.TokenKey("t1"), d.Org},
		{"org role", apitoken.Token{ID: "t1", Kind: apitoken.KindOrg, Roles: []string{"observer", "slow"}}, apitoken.TokenKey("t1"), d.Roles["slow"]},
		{"highest role", apitoken.Token{ID: "t1", Kind: apitoken.KindOrg, Roles: []string{"slow", "bulk"}}, apitoken.TokenKey("t1"), d.Roles["bulk"]},
		{"own limit", apitoken.Token{ID: "t1", Kind: apitoken.KindOrg, Roles: []string{"bulk"}, RateLimit: &own}, apitoken.TokenKey("t1"), own},
		{"own unlimited", apitoken.Token{ID: "t1", Kind: apitoken.KindOrg, RateLimit: &apitoken.Limit{}}, apitoken.TokenKey("t1"), apitoken.Limit{}},
		{"user", apitoken.Token{ID: "t2", Kind: apitoken.KindUser, OwnerID: "u1", Roles: []string{"bulk"}}, apitoken.UserKey("u1"), d.User},
	}
	for _, tc := range tests {
		key, limit := d.LimitFor(&tc.tok)
		if key != tc.wantKey || limit != tc.want {
			t.Errorf("%s: LimitFor = %v, %+v; want %v, %+v", tc.name, key, limit, tc.wantKey, tc.want)
		}
	}
	e := newEnv(t, testPolicy())
	spec := userSpec("u1")
	spec.RateLimit = &own
	if _, _, err := e.iss.Issue(context.Background(), spec); !errors.Is(err, apitoken.ErrPolicy) {
		t.Errorf("Issue(user token with own limit) = %v, want ErrPolicy", err)
	}
	pol := testPolicy()
	pol.Roles["bad"] = apitoken.Role{RateLimit: apitoken.Limit{Rate: 1}}
	if err := pol.Validate(); !errors.Is(err, apitoken.ErrPolicy) {
		t.Errorf("Validate(role with zero burst) = %v, want ErrPolicy", err)
	}
}

// LastUsedAt has the precision of the flush interval: a use less than one
// interval after the stored LastUsedAt is not written again.
func TestLastUsedPrecisionIsTheFlushInterval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	sec, tok := e.issue(t, orgSpec())
	use := func(after time.Duration) {
		t.Helper()
		e.clock.Advance(after)
		if _, err := e.v.Validate(ctx, sec, readDev); err != nil {
			t.Fatal(err)
		}
		require.NoError(t, e.v.Flush(ctx))
	}
	lastUsed := func() time.Time {
		t.Helper()
		got, err := e.mem.Get(ctx, tok.ID)
		require.NoError(t, err)
		return got.LastUsedAt
	}
	use(time.Second)
	first := e.clock.Now()
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("LastUsedAt after the first use = %v, want %v", got, first)
	}
	use(apitoken.DefaultFlushInterval - 2*time.Second) // within one interval
	if got, n := lastUsed(), e.store.touches.Load(); !got.Equal(first) || n != 1 {
		t.Errorf("a use within one interval: LastUsedAt %v, %d Touch calls; want %v and 1", got, n, first)
	}
	use(2 * time.Second) // one interval and a second after the stored use
	if got, want := lastUsed(), e.clock.Now(); !got.Equal(want) {
		t.Errorf("a use one interval later: LastUsedAt %v, want %v", got, want)
	}
}

// TestDeniedRequestIsRefunded: with a LookupLimiter store as its limiter, a
// request charged in the combined lookup and then denied by IP, access or
// resource gets its request back, under the key the lookup charged.
func TestDeniedRequestIsRefunded(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 5}
	s := &lookupLimiter{Store: memstore.New(), lim: apitoken.NewLocalLimiter()}
	iss, err := apitoken.NewIssuer(s, pol)
	require.NoError(t, err)
	v, err := newValidator(t, s, pol, apitoken.WithLimiter(s))
	require.NoError(t, err)
	spec := orgSpec()
	spec.IPFilter = "office"
	spec.Resources = []string{"site-a"}
	secret, tok, err := iss.Issue(ctx, spec)
	require.NoError(t, err)
	for _, req := range []apitoken.Request{
		{IP: otherIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead},
		{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessFull},
		{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead, Resource: "site-b"},
	} {
		_, err := v.Validate(ctx, secret.Reveal(), req)
		require.Error(t, err, "%+v", req)
	}
	assert.Equal(t, 3, s.combined)
	assert.Equal(t, []apitoken.LimitKey{apitoken.TokenKey(tok.ID), apitoken.TokenKey(tok.ID), apitoken.TokenKey(tok.ID)}, s.refunds)
	_, err = v.Validate(ctx, secret.Reveal(), readDev)
	require.NoError(t, err)
	assert.Len(t, s.refunds, 3, "an admitted request is not refunded")
}

// TestDroppedValidatorStopsItsLoop: a Validator nobody closes does not keep
// its flush loop, or itself, alive forever: once it is collected the loop
// writes the use it held and ends, and the logger hears, once, that Close
// was forgotten.
func TestDroppedValidatorStopsItsLoop(t *testing.T) {
	var logged syncBuffer
	store := &faultStore{Store: memstore.New()}
	iss, err := apitoken.NewIssuer(store, testPolicy())
	require.NoError(t, err)
	s, _, err := iss.Issue(t.Context(), orgSpec())
	require.NoError(t, err)
	func() {
		v, err := apitoken.NewValidator(store, testPolicy(), apitoken.WithSingleTenant("org_1"),
			apitoken.WithLogger(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))))
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), s.Reveal(), readDev)
		require.NoError(t, err)
	}() // v is dropped here, never closed
	for i := 0; i < 200 && store.touches.Load() == 0; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	assert.Equal(t, int64(1), store.touches.Load(), "the loop of a collected Validator writes its use")
	assert.Equal(t, `level=WARN msg="apitoken: a Validator was dropped without Close while holding last-used times; `+
		`its cleanup writes them now, but call Validator.Close at shutdown so none is lost" pending=1`+"\n", logged.String())

	// A closed Validator, collected, says nothing.
	logged.Reset()
	func() {
		v, err := apitoken.NewValidator(store, testPolicy(), apitoken.WithSingleTenant("org_1"),
			apitoken.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), s.Reveal(), readDev)
		require.NoError(t, err)
		require.NoError(t, v.Close(t.Context()))
	}()
	for range 20 {
		runtime.GC()
		runtime.Gosched()
	}
	assert.Empty(t, logged.String())
}

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// TestOtherOrgSaysWhyInTheLogOnly: an org token presented in another org,
// or in none on a multi-tenant Validator, is ErrUnknown (the client learns
// nothing more), and the error's text, for logs, says why.
func TestOtherOrgSaysWhyInTheLogOnly(t *testing.T) {
	e := newEnv(t, testPolicy())
	secret, tok := e.issue(t, orgSpec())
	_, err := e.v.Validate(context.Background(), secret, apitoken.Request{Org: "org_2"})
	require.True(t, only(err, apitoken.ErrUnknown), "%v", err)
	require.EqualError(t, err, "apitoken: token "+tok.ID+": unknown token: not valid in this org (an org token works only in its own org)")
	_, err = e.v.Validate(context.Background(), secret, apitoken.Request{})
	require.True(t, only(err, apitoken.ErrUnknown), "%v", err)
	require.EqualError(t, err, "apitoken: token "+tok.ID+": unknown token: not valid without an org (the request named none, on a multi-tenant Validator)")
}
