package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses about the instants the contract decides on, each checked to the
// nanosecond on either side of the instant: a token is expired at now when
// now is not before its ExpiresAt ([apitoken.Token.Expired]), so it is
// live 1 ns before ExpiresAt and expired from ExpiresAt on; Prune's
// instants are exclusive ("before this instant"). The instant is edge, a
// whole microsecond (which every store keeps exactly) that is not a whole
// second or millisecond, so a store that keeps less, or rounds, is caught.

// edge is the instant the clauses put an ExpiresAt, RevokedAt, CreatedAt
// or LastUsedAt at.
var edge = now.Add(90*time.Minute + 123456*time.Microsecond)

// Offsets from edge, each named for failure messages.
var (
	beforeEdge = []offset{{-time.Hour, "1 h"}, {-time.Second, "1 s"}, {-time.Microsecond, "1 µs"}, {-time.Nanosecond, "1 ns"}}
	fromEdge   = []offset{{0, "0"}, {time.Nanosecond, "1 ns"}, {time.Microsecond, "1 µs"}, {time.Millisecond, "1 ms"},
		{time.Second, "1 s"}, {time.Hour, "1 h"}, {day, "1 day"}, {365 * day, "365 days"}}
)

type offset struct {
	d    time.Duration
	name string
}

func (o offset) String() string {
	switch {
	case o.d < 0:
		return o.name + " before"
	case o.d == 0:
		return "at"
	}
	return o.name + " after"
}

func createInstantClauses() []clause {
	return []clause{{"MaxPerOwnerCountsLiveUntilExpiresAt", testCreateMaxPerOwnerExpiry}}
}

func lookupLimiterInstantClauses() []clause {
	return []clause{{"ChargedUntilExpiresAt", testLookupLimiterExpiry}}
}

func pruneInstantClauses() []clause {
	return []clause{
		{"IdleBeforeIsExclusive", testPruneIdleExclusive},
		{"EndedBeforeIsExclusive", testPruneEndedExclusive},
	}
}

// expiryClauses run the expiry decision end to end: an Issuer writes the
// token, a Validator with a clock reads it back and decides.
func expiryClauses() []clause {
	return []clause{
		{"ValidUntilExpiresAt", testExpiryValidUntil},
		{"GraceEndsAtPrevExpiresAt", testExpiryGrace},
	}
}

// testCreateMaxPerOwnerExpiry: "live tokens (not revoked, and not expired
// at t.CreatedAt)": a token expiring at edge counts against the bound of a
// token created 1 ns before edge, and no longer of one created at edge.
func testCreateMaxPerOwnerExpiry(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	old := newToken(t)
	old.ExpiresAt = edge
	create(t, s, old)
	for _, o := range beforeEdge {
		tok := newToken(t)
		tok.CreatedAt, tok.UpdatedAt = edge.Add(o.d), edge.Add(o.d)
		if err := s.Create(ctx, tok, 1); !errors.Is(err, apitoken.ErrTooManyTokens) {
			t.Errorf("Create(max 1 per owner, CreatedAt %s the owner's other token's ExpiresAt) error = %v, want %v (that token is live until its ExpiresAt)",
				o, err, apitoken.ErrTooManyTokens)
		}
		wantNotFound(t, s, tok.ID, "of a refused Create")
	}
	tok := newToken(t)
	tok.CreatedAt, tok.UpdatedAt = edge, edge
	if err := s.Create(ctx, tok, 1); err != nil {
		t.Errorf("Create(max 1 per owner, CreatedAt at the owner's other token's ExpiresAt) error = %v, want nil (that token expired at its ExpiresAt)", err)
	}
}

// testLookupLimiterExpiry: GetByHashAllow takes a request "when the token
// is found and neither revoked nor expired at now": up to 1 ns before its
// ExpiresAt, and not from ExpiresAt on. Every call finds the token.
func testLookupLimiterExpiry(t *testing.T, s apitoken.Store) {
	ll := capability[apitoken.LookupLimiter](t, s)
	d := apitoken.LimitDefaults{User: apitoken.Limit{Rate: 1, Burst: 100}}
	tok := newToken(t)
	tok.ExpiresAt = edge
	create(t, s, tok)
	check := func(o offset, want bool) {
		got, dec, err := ll.GetByHashAllow(t.Context(), tok.Hash, d, edge.Add(o.d))
		if err != nil || got == nil || got.ID != tok.ID {
			t.Errorf("GetByHashAllow(now %s ExpiresAt) = %v, %v; want the token", o, describe(got), err)
			return
		}
		switch {
		case want && dec == nil:
			t.Errorf("GetByHashAllow(now %s ExpiresAt): no decision, want one (the token is live)", o)
		case !want && dec != nil:
			t.Errorf("GetByHashAllow(now %s ExpiresAt): decision %+v, want none (the token expired at ExpiresAt)", o, *dec)
		}
	}
	for _, o := range beforeEdge {
		check(o, true)
	}
	for _, o := range fromEdge {
		check(o, false)
	}
}

// wantPruned runs Prune(r) and reports an error unless it deleted want.
func wantPruned(t *testing.T, s apitoken.Store, what string, r apitoken.PruneRequest, want int) {
	t.Helper()
	n, err := s.Prune(t.Context(), r)
	if err != nil || n != want {
		t.Errorf("Prune(%s) = %d, %v; want %d, nil", what, n, err, want)
	}
}

// testPruneIdleExclusive: IdleBefore "matches tokens whose last use (or
// creation, if never used) is before this instant": not a token last
// active at IdleBefore, a token last active 1 ns before it.
func testPruneIdleExclusive(t *testing.T, s apitoken.Store) {
	unused := aged(t, 0, func(x *apitoken.Token) { x.CreatedAt, x.UpdatedAt = edge, edge })
	used := aged(t, -day, func(x *apitoken.Token) { x.LastUsedAt = edge })
	create(t, s, unused, used)
	r := apitoken.PruneRequest{Limit: 10}
	for _, o := range []offset{{-time.Nanosecond, "1 ns"}, {0, "0"}} {
		r.IdleBefore = edge.Add(o.d)
		wantPruned(t, s, fmt.Sprintf("IdleBefore %s the instant one token was created and another last used", o), r, 0)
	}
	r.IdleBefore = edge.Add(time.Nanosecond)
	wantPruned(t, s, "IdleBefore 1 ns after the instant one token was created and another last used", r, 2)
}

// testPruneEndedExclusive: EndedBefore "matches tokens that expired or
// were revoked before this instant": not at EndedBefore, 1 ns before it.
func testPruneEndedExclusive(t *testing.T, s apitoken.Store) {
	expired := aged(t, -day, func(x *apitoken.Token) { x.ExpiresAt = edge })
	revoked := aged(t, -day, func(x *apitoken.Token) { x.RevokedAt = edge })
	create(t, s, expired, revoked)
	r := apitoken.PruneRequest{Limit: 10}
	for _, o := range []offset{{-time.Nanosecond, "1 ns"}, {0, "0"}} {
		r.EndedBefore = edge.Add(o.d)
		wantPruned(t, s, fmt.Sprintf("EndedBefore %s the instant one token expired and another was revoked", o), r, 0)
	}
	r.EndedBefore = edge.Add(time.Nanosecond)
	wantPruned(t, s, "EndedBefore 1 ns after the instant one token expired and another was revoked", r, 2)
}

// clock is a settable clock for an Issuer or a Validator.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(tm time.Time)               { c.ns.Store(tm.UnixNano()) }
func (c *clock) now() time.Time                 { return time.Unix(0, c.ns.Load()).UTC() }
func newClock(tm time.Time) *clock              { c := new(clock); c.set(tm); return c }
func (c *clock) option() apitoken.ServiceOption { return apitoken.WithClock(c.now) }

// clockedServices is services with an Issuer on issuer's clock and a
// Validator on validator's.
func clockedServices(t *testing.T, s apitoken.Store, issuer, validator *clock) (*apitoken.Issuer, *apitoken.Validator) {
	t.Helper()
	iss, err := apitoken.NewIssuer(s, lifecyclePolicy, issuer.option())
	if err != nil {
		t.Fatalf("NewIssuer error = %v, want nil", err)
	}
	v, err := apitoken.NewValidator(s, lifecyclePolicy, validator.option())
	if err != nil {
		t.Fatalf("NewValidator error = %v, want nil", err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	return iss, v
}

// expiryChecks is how many random instants from the end of a secret's
// life on the expiry clauses validate it at.
const expiryChecks = 1000

// wantExpiredFrom validates secret at each of fromEdge and at expiryChecks
// random instants in [edge, edge+2h), and reports every one that is not
// ErrExpired.
func wantExpiredFrom(t *testing.T, v *apitoken.Validator, c *clock, what string, secret apitoken.Secret) {
	t.Helper()
	validate := func(at time.Time) error {
		c.set(at)
		_, err := v.Validate(t.Context(), secret.Reveal(), orgRequest)
		return err
	}
	for _, o := range fromEdge {
		if err := validate(edge.Add(o.d)); !errors.Is(err, apitoken.ErrExpired) {
			t.Errorf("Validate(%s) %s its end error = %v, want %v", what, o, err, apitoken.ErrExpired)
		}
	}
	accepted, other := 0, 0
	var firstOther error
	for range expiryChecks {
		switch err := validate(edge.Add(rand.N(2 * time.Hour))); {
		case err == nil:
			accepted++
		case !errors.Is(err, apitoken.ErrExpired):
			if other++; other == 1 {
				firstOther = err
			}
		}
	}
	if accepted > 0 || other > 0 {
		t.Errorf("Validate(%s) at %d random instants in the 2 h from its end: %d accepted, %d other errors (first: %v); want 0 and 0, every one %v",
			what, expiryChecks, accepted, other, firstOther, apitoken.ErrExpired)
	}
}

// testExpiryValidUntil: a token issued with a lifetime ending at edge
// validates up to 1 ns before edge and is expired at edge and at every
// later instant (1,000 random ones), with nothing pruning it: the
// Validator decides on the ExpiresAt the store gives back, which must be
// the one the Issuer wrote, to the nanosecond.
func testExpiryValidUntil(t *testing.T, s apitoken.Store) {
	ic, vc := newClock(edge.Add(-time.Hour)), newClock(edge)
	iss, v := clockedServices(t, s, ic, vc)
	secret, tok, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "expiring", Lifetime: apitoken.Hours(1)})
	if err != nil {
		t.Fatalf("Issue error = %v, want nil", err)
	}
	if !tok.ExpiresAt.Equal(edge) {
		t.Fatalf("Issue 1 h before %v with Lifetime Hours(1): ExpiresAt = %v (the clause is wrong)", fmtTime(edge), fmtTime(tok.ExpiresAt))
	}
	wantTime(t, "stored ExpiresAt", get(t, s, tok.ID).ExpiresAt, edge)
	for _, o := range beforeEdge {
		vc.set(edge.Add(o.d))
		wantValid(t, v, fmt.Sprintf("the secret %s its ExpiresAt", o), secret, tok.ID)
	}
	wantExpiredFrom(t, v, vc, "the secret", secret)
}

// testExpiryGrace: a secret replaced with a grace period ending at edge
// validates up to 1 ns before edge and is refused from edge on, while the
// new secret validates.
func testExpiryGrace(t *testing.T, s apitoken.Store) {
	ic, vc := newClock(now), newClock(now)
	iss, v := clockedServices(t, s, ic, vc)
	old, tok := issueOrgToken(t, iss)
	ic.set(edge.Add(-time.Hour))
	secret, tok, err := iss.Regenerate(t.Context(), tok.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
	if err != nil {
		t.Fatalf("Regenerate(WithGrace 1 h) error = %v, want nil", err)
	}
	if !tok.PrevExpiresAt.Equal(edge) {
		t.Fatalf("Regenerate 1 h before %v with a grace of 1 h: PrevExpiresAt = %v (the clause is wrong)", fmtTime(edge), fmtTime(tok.PrevExpiresAt))
	}
	wantTime(t, "stored PrevExpiresAt", get(t, s, tok.ID).PrevExpiresAt, edge)
	for _, o := range beforeEdge {
		vc.set(edge.Add(o.d))
		wantValid(t, v, fmt.Sprintf("the replaced secret %s its PrevExpiresAt", o), old, tok.ID)
	}
	wantExpiredFrom(t, v, vc, "the replaced secret", old)
	vc.set(edge)
	wantValid(t, v, "the new secret at the replaced one's PrevExpiresAt", secret, tok.ID)
}
