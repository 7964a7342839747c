package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// lookupLimiterClauses check the optional LookupLimiter capability; they
// skip on a store without it.
func lookupLimiterClauses() []clause {
	return []clause{
		{"ChargesTheLimitLimitForGives", testLookupLimiterLimitFor},
		{"PrevHashIsCharged", testLookupLimiterPrevHash},
		{"UserTokensShareTheUsersBudget", testLookupLimiterUserBudget},
		{"EndedTokensAreNotCharged", testLookupLimiterEnded},
		{"MissingIsErrNotFound", testLookupLimiterMissing},
		{"ResetAfterMatchesResetAt", testLookupLimiterResetAfter},
	}
}

// refundClauses check LookupLimiter.Refund; they skip on a store without
// the capability.
func refundClauses() []clause {
	return []clause{
		{"GivesBackOneRequest", testRefundGivesBack},
		{"MakesRoomAfterDenial", testRefundAfterDenial},
		{"NeverAboveFull", testRefundNeverAboveFull},
		{"UnknownKeyIsNoError", testRefundUnknownKey},
	}
}

// allowByHash calls GetByHashAllow and fails unless it found tok and took a
// decision.
func allowByHash(t *testing.T, ll apitoken.LookupLimiter, tok *apitoken.Token, d apitoken.LimitDefaults) apitoken.Decision {
	t.Helper()
	got, dec, err := ll.GetByHashAllow(t.Context(), tok.Hash, d, now)
	if err != nil || got == nil || dec == nil {
		t.Fatalf("GetByHashAllow(%s) = %v, decision %+v, error %v; want the token and a decision", tok.Name, describe(got), dec, err)
	}
	if got.ID != tok.ID {
		t.Fatalf("GetByHashAllow(%s) found %s, want %s", tok.Name, got.ID, tok.ID)
	}
	return *dec
}

func testLookupLimiterLimitFor(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	hourly := func(n, burst int) apitoken.Limit {
		return apitoken.Limit{Rate: apitoken.Per(n, time.Hour), Burst: burst}
	}
	odd := `we"ird":[` // a role name a store's encoding must escape
	d := apitoken.LimitDefaults{
		Org:   hourly(1, 2),
		User:  hourly(1, 3),
		Roles: map[string]apitoken.Limit{"slow": hourly(1, 4), "fast": hourly(2, 6), odd: hourly(3, 7)},
	}
	override := hourly(1, 5)
	tok := func(name string, kind apitoken.Kind, roles []string, limit *apitoken.Limit) *apitoken.Token {
		tok := newToken(t)
		tok.Kind, tok.Name, tok.Roles, tok.RateLimit = kind, name, roles, limit
		if kind == apitoken.KindOrg {
			tok.OwnerID = "org_1"
		}
		return tok
	}
	cases := []struct {
		tok  *apitoken.Token
		want apitoken.Limit
	}{
		{tok("org token", apitoken.KindOrg, nil, nil), d.Org},
		{tok("org token with an override", apitoken.KindOrg, []string{"fast"}, &override), override},
		{tok("org token with one limited role", apitoken.KindOrg, []string{"slow", "unlimited"}, nil), d.Roles["slow"]},
		{tok("org token: the highest-rate role wins", apitoken.KindOrg, []string{"slow", "fast"}, nil), d.Roles["fast"]},
		{tok("org token with roles no limit names", apitoken.KindOrg, []string{"reader"}, nil), d.Org},
		{tok("org token with an odd role name", apitoken.KindOrg, []string{"fast", odd}, nil), d.Roles[odd]},
		{tok("user token: its user's budget, whatever its roles or override", apitoken.KindUser, []string{"fast"}, &override), d.User},
	}
	for _, c := range cases {
		create(t, s, c.tok)
	}
	for _, c := range cases {
		key, want := d.LimitFor(c.tok)
		if want != c.want {
			t.Fatalf("LimitFor(%s) = %+v, want %+v (the clause is wrong)", c.tok.Name, want, c.want)
		}
		dec := allowByHash(t, ll, c.tok, d)
		if !dec.Allowed || dec.Limit != want || dec.Remaining != want.Burst-1 {
			t.Errorf("GetByHashAllow(%s): decision %+v; want allowed under %+v with %d remaining", c.tok.Name, dec, want, want.Burst-1)
		}
		// The same budget, seen through Allow under LimitFor's key.
		again, err := ll.Allow(t.Context(), key, want, now)
		if err != nil || again.Remaining != want.Burst-2 {
			t.Errorf("Allow(%v) after GetByHashAllow(%s): %+v, %v; want %d remaining (one shared budget)", key, c.tok.Name, again, err, want.Burst-2)
		}
	}
}

func testLookupLimiterPrevHash(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	d := apitoken.LimitDefaults{Org: apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 2}}
	tok := newToken(t)
	tok.Kind, tok.OwnerID = apitoken.KindOrg, "org_1"
	tok.PrevHash, tok.PrevExpiresAt = randomHash(), now.Add(time.Hour)
	create(t, s, tok)
	got, dec, err := ll.GetByHashAllow(t.Context(), tok.PrevHash, d, now)
	if err != nil || got == nil || got.Hash != tok.Hash || got.PrevHash != tok.PrevHash {
		t.Fatalf("GetByHashAllow(PrevHash in its grace period) = %v, %v; want the token with both hashes", describe(got), err)
	}
	if dec == nil || !dec.Allowed || dec.Remaining != 1 {
		t.Errorf("GetByHashAllow(PrevHash in its grace period): decision %+v; want allowed with 1 remaining", dec)
	}
}

func testLookupLimiterUserBudget(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	d := apitoken.LimitDefaults{
		Org:  apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1},
		User: apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 2},
	}
	a, b := newToken(t), newToken(t) // two tokens of user_1
	o1, o2 := newToken(t), newToken(t)
	o1.Kind, o2.Kind = apitoken.KindOrg, apitoken.KindOrg
	create(t, s, a, b, o1, o2)
	for i, c := range []struct {
		tok     *apitoken.Token
		allowed bool
	}{{a, true}, {b, true}, {a, false}, {b, false}, {o1, true}, {o2, true}, {o1, false}} {
		if dec := allowByHash(t, ll, c.tok, d); dec.Allowed != c.allowed {
			t.Errorf("request %d (%s %s): allowed = %v, want %v", i, c.tok.Kind, c.tok.ID, dec.Allowed, c.allowed)
		}
	}
}

func testLookupLimiterEnded(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	d := apitoken.LimitDefaults{User: apitoken.Limit{Rate: 1, Burst: 5}}
	revoked, expired := newToken(t), newToken(t)
	revoked.RevokedAt = now.Add(-time.Minute)
	expired.ExpiresAt = now.Add(-time.Minute)
	create(t, s, revoked, expired)
	for _, tok := range []*apitoken.Token{revoked, expired} {
		got, dec, err := ll.GetByHashAllow(t.Context(), tok.Hash, d, now)
		if err != nil || got == nil || got.ID != tok.ID || dec != nil {
			t.Errorf("GetByHashAllow(an ended token) = %v, decision %+v, error %v; want the token and no decision", describe(got), dec, err)
		}
	}
	// Nothing was taken from the user's budget.
	if dec, err := ll.Allow(t.Context(), apitoken.UserKey("user_1"), d.User, now); err != nil || dec.Remaining != 4 {
		t.Errorf("Allow(user_1) after ended tokens: %+v, %v; want 4 remaining", dec, err)
	}
}

func testLookupLimiterMissing(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	create(t, s, newToken(t))
	got, dec, err := ll.GetByHashAllow(t.Context(), randomHash(), apitoken.LimitDefaults{User: apitoken.Limit{Rate: 1, Burst: 1}}, now)
	if !errors.Is(err, apitoken.ErrNotFound) || dec != nil {
		t.Errorf("GetByHashAllow(unknown hash) = %v, decision %+v, error %v; want %v", describe(got), dec, err, apitoken.ErrNotFound)
	}
}

// wantResetAfter reports an error unless d, a decision taken at now under
// limit that took a request, has a positive ResetAfter that is ResetAt less
// now (to the millisecond) and no more than a full bucket's refill.
func wantResetAfter(t testing.TB, what string, d apitoken.Decision, limit apitoken.Limit) {
	t.Helper()
	full := time.Duration(float64(limit.Burst) / float64(limit.Rate) * float64(time.Second))
	if d.ResetAfter <= 0 || d.ResetAfter > full+time.Millisecond {
		t.Errorf("%s: ResetAfter = %v, want in (0, %v] (a request was taken under %+v)", what, d.ResetAfter, full, limit)
	}
	if skew := d.ResetAt.Sub(now) - d.ResetAfter; skew < -time.Millisecond || skew > time.Millisecond {
		t.Errorf("%s: ResetAt %v is now + %v, but ResetAfter = %v; want ResetAt - now = ResetAfter", what, fmtTime(d.ResetAt), d.ResetAt.Sub(now), d.ResetAfter)
	}
}

// testLookupLimiterResetAfter: a Decision of GetByHashAllow or Allow that
// took a request says how long until the bucket is full again, as
// ResetAfter and as ResetAt = now + ResetAfter.
func testLookupLimiterResetAfter(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	limit := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 3}
	d := apitoken.LimitDefaults{User: limit}
	tok := newToken(t)
	create(t, s, tok)
	first := allowByHash(t, ll, tok, d)
	wantResetAfter(t, "GetByHashAllow (1st request)", first, limit)
	second := allowByHash(t, ll, tok, d)
	wantResetAfter(t, "GetByHashAllow (2nd request)", second, limit)
	if second.ResetAfter <= first.ResetAfter {
		t.Errorf("ResetAfter after 2 requests = %v, want more than after 1 (%v)", second.ResetAfter, first.ResetAfter)
	}
	third, err := ll.Allow(t.Context(), apitoken.UserKey(tok.OwnerID), limit, now)
	if err != nil || !third.Allowed {
		t.Fatalf("Allow (3rd request of burst 3) = %+v, %v; want allowed", third, err)
	}
	wantResetAfter(t, "Allow (3rd request)", third, limit)
}

// refundSetup creates a user token and returns the LookupLimiter, the
// token, its limit defaults, and the key and limit GetByHashAllow charges.
func refundSetup(t *testing.T, s apitoken.Store, burst int) (apitoken.LookupLimiter, *apitoken.Token, apitoken.LimitDefaults, apitoken.LimitKey, apitoken.Limit) {
	t.Helper()
	ll := capability[apitoken.LookupLimiter](t, s)
	limit := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: burst}
	d := apitoken.LimitDefaults{User: limit}
	tok := newToken(t)
	create(t, s, tok)
	key, _ := d.LimitFor(tok)
	return ll, tok, d, key, limit
}

func refund(t testing.TB, ll apitoken.LookupLimiter, key apitoken.LimitKey, limit apitoken.Limit, what string) {
	t.Helper()
	if err := ll.Refund(t.Context(), key, limit, now); err != nil {
		t.Fatalf("Refund(%v) %s error = %v, want nil", key, what, err)
	}
}

// testRefundGivesBack: after a Refund, the next request finds the budget
// one request fuller than without it.
func testRefundGivesBack(t *testing.T, s apitoken.Store) {
	ll, tok, d, key, limit := refundSetup(t, s, 3)
	allowByHash(t, ll, tok, d)
	if dec := allowByHash(t, ll, tok, d); dec.Remaining != 1 {
		t.Fatalf("GetByHashAllow (2nd request of burst 3): Remaining = %d, want 1", dec.Remaining)
	}
	refund(t, ll, key, limit, "after 2 requests")
	if dec := allowByHash(t, ll, tok, d); !dec.Allowed || dec.Remaining != 1 {
		t.Errorf("GetByHashAllow after a Refund: %+v; want allowed with Remaining 1 (the refunded request back)", dec)
	}
	// Allow's requests are refunded as GetByHashAllow's are.
	if dec, err := ll.Allow(t.Context(), key, limit, now); err != nil || dec.Remaining != 0 {
		t.Fatalf("Allow (4th request, 1 refunded): %+v, %v; want Remaining 0", dec, err)
	}
	refund(t, ll, key, limit, "after Allow")
	if dec, err := ll.Allow(t.Context(), key, limit, now); err != nil || !dec.Allowed || dec.Remaining != 0 {
		t.Errorf("Allow after a Refund of Allow's request: %+v, %v; want allowed with Remaining 0", dec, err)
	}
}

// testRefundAfterDenial: a Refund on an exhausted budget lets exactly one
// more request through.
func testRefundAfterDenial(t *testing.T, s apitoken.Store) {
	ll, tok, d, key, limit := refundSetup(t, s, 2)
	allowByHash(t, ll, tok, d)
	allowByHash(t, ll, tok, d)
	if dec := allowByHash(t, ll, tok, d); dec.Allowed {
		t.Fatalf("GetByHashAllow (3rd request of burst 2): %+v; want denied", dec)
	}
	refund(t, ll, key, limit, "of an exhausted budget")
	if dec := allowByHash(t, ll, tok, d); !dec.Allowed || dec.Remaining != 0 {
		t.Errorf("GetByHashAllow after a Refund of an exhausted budget: %+v; want allowed with Remaining 0", dec)
	}
	if dec := allowByHash(t, ll, tok, d); dec.Allowed {
		t.Errorf("GetByHashAllow after the refunded request was used: %+v; want denied (one Refund, one request)", dec)
	}
}

// testRefundNeverAboveFull: refunds beyond the requests taken leave the
// bucket full, never fuller.
func testRefundNeverAboveFull(t *testing.T, s apitoken.Store) {
	ll, tok, d, key, limit := refundSetup(t, s, 3)
	allowByHash(t, ll, tok, d)
	for i := range 3 {
		refund(t, ll, key, limit, fmt.Sprintf("%d of 3 after 1 request", i+1))
	}
	for i, want := range []int{2, 1, 0} {
		if dec := allowByHash(t, ll, tok, d); !dec.Allowed || dec.Remaining != want {
			t.Errorf("GetByHashAllow %d after 3 Refunds of 1 request: %+v; want allowed with Remaining %d (never above a full bucket)", i+1, dec, want)
		}
	}
	if dec := allowByHash(t, ll, tok, d); dec.Allowed {
		t.Errorf("GetByHashAllow 4th after 3 Refunds of 1 request, burst 3: %+v; want denied", dec)
	}
}

// testRefundUnknownKey: refunding a key with no state (a full bucket, or
// one never charged) changes nothing and is no error.
func testRefundUnknownKey(t *testing.T, s apitoken.Store) {
	ll, tok, d, key, limit := refundSetup(t, s, 2)
	refund(t, ll, apitoken.TokenKey(newID(t)), limit, "of a key never charged")
	refund(t, ll, key, limit, "of the user's budget, never charged")
	if dec := allowByHash(t, ll, tok, d); !dec.Allowed || dec.Remaining != 1 {
		t.Errorf("GetByHashAllow after Refunds of an unknown key: %+v; want allowed with Remaining 1 (a full bucket of 2, less 1)", dec)
	}
}
