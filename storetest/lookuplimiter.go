package storetest

import (
	"errors"
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
