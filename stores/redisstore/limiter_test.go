package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// The GCRA script runs on Redis server time, which apitoken.WithClock does
// not move (WithTimeOffset does: see TestTimeOffset). The limits here
// refill so slowly (one request an hour) that the milliseconds a test
// takes change nothing, so the decisions are exact.

func TestLimiterDecisions(t *testing.T) {
	t.Parallel()
	client := singleClient(t, testservers.StartRedis(t))
	ctx := t.Context()
	lim, err := redisstore.NewLimiter(ctx, client, redisstore.WithKeyPrefix(storetest.Namespace(t)))
	if err != nil {
		t.Fatalf("NewLimiter error = %v", err)
	}
	limit := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 3}
	key := apitoken.TokenKey("tok_1")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // ResetAt is anchored to the caller's now
	for i, want := range []struct {
		allowed   bool
		remaining int
	}{{true, 2}, {true, 1}, {true, 0}, {false, 0}, {false, 0}} {
		d, err := lim.Allow(ctx, key, limit, now)
		if err != nil {
			t.Fatalf("Allow #%d error = %v", i+1, err)
		}
		if d.Allowed != want.allowed || d.Remaining != want.remaining || d.Limit != limit {
			t.Errorf("Allow #%d = {Allowed %v, Remaining %d, Limit %+v}, want {%v, %d, %+v}", i+1, d.Allowed, d.Remaining, d.Limit, want.allowed, want.remaining, limit)
		}
		// After k requests the bucket is full again k hours later.
		taken := min(i+1, 3)
		if reset := d.ResetAt.Sub(now); reset > time.Duration(taken)*time.Hour || reset < time.Duration(taken)*time.Hour-time.Minute {
			t.Errorf("Allow #%d: ResetAt = now + %v, want about %d h", i+1, reset, taken)
		}
		switch {
		case d.Allowed && d.RetryAfter != 0:
			t.Errorf("Allow #%d allowed with RetryAfter %v, want 0", i+1, d.RetryAfter)
		case !d.Allowed && (d.RetryAfter > time.Hour || d.RetryAfter < time.Hour-time.Minute):
			t.Errorf("Allow #%d denied with RetryAfter %v, want about 1h", i+1, d.RetryAfter)
		}
	}
	// Another key has a budget of its own; a user's key is not a token's.
	for _, k := range []apitoken.LimitKey{apitoken.TokenKey("tok_2"), apitoken.UserKey("tok_1")} {
		if d, err := lim.Allow(ctx, k, limit, now); err != nil || !d.Allowed || d.Remaining != 2 {
			t.Errorf("Allow(%v) on a fresh budget = %+v, %v; want allowed, 2 remaining", k, d, err)
		}
	}
}

func TestLimiterInvalidLimit(t *testing.T) {
	t.Parallel()
	client := singleClient(t, testservers.StartRedis(t))
	s := newStore(t, client)
	for _, l := range []apitoken.Limit{{}, {Rate: 1}, {Burst: 1}, {Rate: -1, Burst: 1}} {
		if _, err := s.Allow(t.Context(), apitoken.TokenKey("x"), l, time.Now()); err == nil {
			t.Errorf("Allow(limit %+v) error = nil, want an error", l)
		}
	}
}

// TestLookupLimiter checks GetByHashAllow: which budget it charges, when it
// charges none, and that the budget is the one Allow charges.
func TestLookupLimiter(t *testing.T) {
	t.Parallel()
	client := singleClient(t, testservers.StartRedis(t))
	ctx := t.Context()
	s := newStore(t, client, redisstore.WithRetention(0))
	now := time.Now()
	slow := func(burst int) apitoken.Limit { return apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: burst} }
	defaults := apitoken.LimitDefaults{Org: slow(2), User: slow(3)}

	var n byte
	tok := func(kind apitoken.Kind, owner string, change func(*apitoken.Token)) *apitoken.Token {
		n++
		x := &apitoken.Token{ID: "id-" + string('a'+rune(n)), Kind: kind, OwnerID: owner, OrgID: "org_1",
			CreatedAt: now, UpdatedAt: now, Version: 1}
		x.Hash[0], x.Hash[1] = n, 7
		if change != nil {
			change(x)
		}
		if err := s.Create(ctx, x, 0); err != nil {
			t.Fatalf("Create error = %v", err)
		}
		return x
	}
	take := func(x *apitoken.Token, h apitoken.Hash) *apitoken.Decision {
		t.Helper()
		got, d, err := s.GetByHashAllow(ctx, h, defaults, now)
		if err != nil || got.ID != x.ID {
			t.Fatalf("GetByHashAllow(%s) = %v, %v; want the token", x.ID, got, err)
		}
		return d
	}
	remaining := func(what string, d *apitoken.Decision, want int) {
		t.Helper()
		if d == nil {
			t.Errorf("%s: no decision, want one with %d remaining", what, want)
		} else if d.Remaining != want || d.Allowed != (want >= 0) {
			t.Errorf("%s: Decision {Allowed %v, Remaining %d}, want {%v, %d}", what, d.Allowed, d.Remaining, want >= 0, max(want, 0))
		}
	}

	org := tok(apitoken.KindOrg, "org_1", nil)
	remaining("org token, 1st", take(org, org.Hash), 1)
	d, err := s.Allow(ctx, apitoken.TokenKey(org.ID), defaults.Org, now)
	if err != nil || !d.Allowed || d.Remaining != 0 {
		t.Errorf("Allow(TokenKey) after one lookup = %+v, %v; want allowed, 0 remaining (one shared budget)", d, err)
	}
	if d := take(org, org.Hash); d == nil || d.Allowed || d.RetryAfter <= 0 || d.Limit != defaults.Org {
		t.Errorf("org token, 3rd request of burst 2: Decision %+v, want denied with a RetryAfter and the org default", d)
	}

	// A user's tokens share the user's budget.
	u1 := tok(apitoken.KindUser, "user_7", nil)
	u2 := tok(apitoken.KindUser, "user_7", nil)
	remaining("user token 1", take(u1, u1.Hash), 2)
	remaining("user token 2 of the same user", take(u2, u2.Hash), 1)
	if d, err := s.Allow(ctx, apitoken.UserKey("user_7"), defaults.User, now); err != nil || d.Remaining != 0 {
		t.Errorf("Allow(UserKey) = %+v, %v; want 0 remaining", d, err)
	}

	// An override applies; an explicit zero limit means none.
	over := tok(apitoken.KindOrg, "org_1", func(x *apitoken.Token) { x.RateLimit = &apitoken.Limit{Rate: 1, Burst: 5} })
	if d := take(over, over.Hash); d == nil || d.Remaining != 4 || d.Limit != *over.RateLimit {
		t.Errorf("token with a RateLimit override: Decision %+v, want 4 remaining under %+v", d, *over.RateLimit)
	}
	unlimited := tok(apitoken.KindOrg, "org_1", func(x *apitoken.Token) { x.RateLimit = &apitoken.Limit{} })
	if d := take(unlimited, unlimited.Hash); d != nil {
		t.Errorf("token with a zero RateLimit: Decision %+v, want nil", d)
	}

	// Revoked, expired, or found by a previous hash past its grace: no
	// budget is charged.
	revoked := tok(apitoken.KindOrg, "org_1", func(x *apitoken.Token) { x.RevokedAt = now.Add(-time.Minute) })
	expired := tok(apitoken.KindOrg, "org_1", func(x *apitoken.Token) { x.ExpiresAt = now.Add(-time.Second) })
	graced := tok(apitoken.KindOrg, "org_1", func(x *apitoken.Token) {
		x.PrevHash = x.Hash
		x.PrevHash[2] = 1
		x.PrevExpiresAt = now.Add(-time.Second)
	})
	for _, x := range []*apitoken.Token{revoked, expired} {
		if d := take(x, x.Hash); d != nil {
			t.Errorf("GetByHashAllow(%s, revoked or expired) Decision = %+v, want nil", x.ID, d)
		}
	}
	if d := take(graced, graced.PrevHash); d != nil {
		t.Errorf("GetByHashAllow(previous hash past its grace) Decision = %+v, want nil", d)
	}
	remaining("the same token by its current hash", take(graced, graced.Hash), 1)

	// Zero defaults: nothing is charged.
	plain := tok(apitoken.KindOrg, "org_1", nil)
	if _, d, err := s.GetByHashAllow(ctx, plain.Hash, apitoken.LimitDefaults{}, now); err != nil || d != nil {
		t.Errorf("GetByHashAllow with zero defaults = %+v, %v; want no decision", d, err)
	}
	if _, _, err := s.GetByHashAllow(ctx, apitoken.Hash{9, 9}, defaults, now); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetByHashAllow(unknown hash) error = %v, want ErrNotFound", err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	client := singleClient(t, testservers.StartRedis(t))
	s := newStore(t, client)
	lim, err := redisstore.NewLimiter(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Store.Close error = %v, want nil", err)
		}
		if err := lim.Close(context.Background()); err != nil {
			t.Errorf("Limiter.Close error = %v, want nil", err)
		}
	}
	if _, err := s.Get(t.Context(), "x"); !errors.Is(err, apitoken.ErrClosed) {
		t.Errorf("Get after Close error = %v, want ErrClosed", err)
	}
	if _, err := lim.Allow(t.Context(), apitoken.UserKey("u"), apitoken.Limit{Rate: 1, Burst: 1}, time.Now()); !errors.Is(err, apitoken.ErrClosed) {
		t.Errorf("Limiter.Allow after Close error = %v, want ErrClosed", err)
	}
}
