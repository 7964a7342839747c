package apitoken_test

// Tests of issue 10's lifecycle and validation rules, each performing the
// attack it closes: the forgotten org, user and org "42", renewal past
// MaxLifetime, a tightened policy and an old token, Regenerate of an expired
// token, concurrent conditional rotation, a narrowed user token's Principal,
// and rejections that name their token.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

func TestMultiTenantRequestWithoutOrgRejectsOrgTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())

	_, err := e.v.Validate(ctx, s, apitoken.Request{API: "devices", Access: apitoken.AccessRead})
	require.ErrorIs(t, err, apitoken.ErrUnknown, "an org token in a request that names no org")
	var te *apitoken.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, tok.ID, te.TokenID, "the decision hook can trace it")

	_, err = e.v.Validate(ctx, s, apitoken.Request{Org: "org_2", API: "devices", Access: apitoken.AccessRead})
	assert.ErrorIs(t, err, apitoken.ErrUnknown, "an org token in another org")

	org, ok := e.v.SingleTenant()
	assert.False(t, ok, "a Validator without WithSingleTenant is multi-tenant")
	assert.Empty(t, org)
}

func TestSingleTenant(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy(), apitoken.WithSingleTenant("org_1"))
	s, _ := e.issue(t, orgSpec())
	p, err := e.v.Validate(ctx, s, apitoken.Request{API: "devices", Access: apitoken.AccessRead})
	require.NoError(t, err, "a request with no org acts in the single tenant")
	assert.Equal(t, "org_1", p.OrgID)
	_, err = e.v.Validate(ctx, s, apitoken.Request{Org: "org_2", API: "devices", Access: apitoken.AccessRead})
	assert.ErrorIs(t, err, apitoken.ErrUnknown, "a request naming another org still acts there")

	org, ok := e.v.SingleTenant()
	assert.True(t, ok)
	assert.Equal(t, "org_1", org)

	_, err = newValidator(t, memstore.New(), testPolicy(), apitoken.WithSingleTenant(""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithSingleTenant")
}

func TestOwnersHaveKinds(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.MaxTokensPerOwner = 1
	e := newEnv(t, pol)
	_, user := e.issue(t, userSpec("42"))
	orgSpec42 := apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "42", Name: "ci", Roles: []string{"observer"}}
	_, org := e.issue(t, orgSpec42) // MaxTokensPerOwner counts (kind, owner): user 42's token does not count

	_, _, err := e.iss.Issue(ctx, userSpec("42"))
	assert.ErrorIs(t, err, apitoken.ErrTooManyTokens, "user 42's second token")

	page, err := e.iss.List(ctx, apitoken.Filter{Owner: apitoken.UserOwner("42")})
	require.NoError(t, err)
	require.Len(t, page.Tokens, 1)
	assert.Equal(t, user.ID, page.Tokens[0].ID)

	n, err := e.iss.RevokeAll(ctx, apitoken.UserOwner("42"))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := e.iss.Get(ctx, org.ID)
	require.NoError(t, err)
	assert.False(t, got.Revoked(), "RevokeAll of user 42 must not revoke org 42's token")

	_, err = e.iss.RevokeAll(ctx, apitoken.Owner{ID: "42"})
	assert.ErrorIs(t, err, apitoken.ErrPolicy, "RevokeAll of an owner without a kind")
	_, err = e.iss.List(ctx, apitoken.Filter{Owner: apitoken.Owner{ID: "42"}})
	assert.ErrorIs(t, err, apitoken.ErrPolicy, "List of an owner without a kind")
}

func TestRenewalCannotPassMaxLifetime(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.MaxLifetime = apitoken.Days(90)
	pol.DefaultLifetime = apitoken.Days(90)
	e := newEnv(t, pol)
	s, tok := e.issue(t, orgSpec())
	assert.True(t, tok.IssuedAt.Equal(t0), "IssuedAt = %v, want %v", tok.IssuedAt, t0)

	e.clock.Advance(80 * 24 * time.Hour)
	life := apitoken.Days(90)
	_, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{Lifetime: &life})
	var pe *apitoken.PolicyError
	require.ErrorAs(t, err, &pe, "renewing on day 80 for 90 more days")
	assert.Equal(t, "MaxLifetime", pe.Rule)

	short := apitoken.Days(10) // ends on day 90: issued + MaxLifetime exactly
	got, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{Lifetime: &short})
	require.NoError(t, err, "shortening or moving the expiry within issued + MaxLifetime")
	assert.True(t, got.ExpiresAt.Equal(t0.Add(90*24*time.Hour)))

	e.clock.Advance(10 * 24 * time.Hour)
	_, err = e.v.Validate(ctx, s, readDev)
	assert.ErrorIs(t, err, apitoken.ErrExpired)

	// Only Regenerate starts a new secret, and with it a new maximum.
	pol.RequireExpiry = true
	e2 := newEnv(t, pol)
	_, tok2 := e2.issue(t, orgSpec())
	none := apitoken.NoExpiry
	_, err = e2.iss.Update(ctx, tok2.ID, apitoken.Patch{Lifetime: &none})
	require.ErrorAs(t, err, &pe, "Update may not remove an expiry RequireExpiry demands")
	assert.Equal(t, "RequireExpiry", pe.Rule)
}

func TestTightenedPolicyAppliesToIssuedTokens(t *testing.T) {
	ctx := context.Background()
	loose := testPolicy()
	loose.DefaultLifetime = apitoken.NoExpiry
	e := newEnv(t, loose)
	plain, _ := e.issue(t, orgSpec())
	office := orgSpec()
	office.IPFilter = "office"
	named, _ := e.issue(t, office)
	inline := orgSpec()
	inline.IPPrefixes = []string{"10.0.0.0/8"}
	inlined, _ := e.issue(t, inline)
	e.clock.Advance(40 * 24 * time.Hour)
	for _, s := range []string{plain, named, inlined} {
		_, err := e.v.Validate(ctx, s, readDev)
		require.NoError(t, err, "under the loose policy")
	}

	tests := []struct {
		name    string
		tighten func(*apitoken.Policy)
		token   string
		want    error
	}{
		{"shorter MaxLifetime", func(p *apitoken.Policy) { p.MaxLifetime = apitoken.Days(30); p.DefaultLifetime = apitoken.Days(30) }, plain, apitoken.ErrExpired},
		{"RequireExpiry", func(p *apitoken.Policy) { p.RequireExpiry = true; p.DefaultLifetime = apitoken.Days(30) }, plain, apitoken.ErrExpired},
		{"RequireIPFilter", func(p *apitoken.Policy) { p.RequireIPFilter = true }, plain, apitoken.ErrIPNotAllowed},
		{"named filter changed", func(p *apitoken.Policy) { p.IPFilters = map[string][]string{"office": {"203.0.113.0/24"}} }, named, apitoken.ErrIPNotAllowed},
		{"named filter removed", func(p *apitoken.Policy) { p.IPFilters = nil }, named, apitoken.ErrIPNotAllowed},
		{"inline filters no longer allowed", func(p *apitoken.Policy) { p.AllowInlineIPFilter = false }, inlined, apitoken.ErrIPNotAllowed},
		{"role removed", func(p *apitoken.Policy) { delete(p.Roles, "observer") }, plain, apitoken.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := testPolicy()
			pol.DefaultLifetime = apitoken.NoExpiry
			tc.tighten(&pol)
			v, err := newValidator(t, e.store, pol, apitoken.WithClock(e.clock.Now))
			require.NoError(t, err)
			_, err = v.Validate(ctx, tc.token, readDev)
			assert.True(t, only(err, tc.want), "Validate under the tightened policy = %v, want %v", err, tc.want)
		})
	}
}

func TestExpiredAndRevokedTokensAreFrozen(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	spec := orgSpec()
	spec.Lifetime = apitoken.Hours(1)
	_, expired := e.issue(t, spec)
	_, revoked := e.issue(t, orgSpec())
	require.NoError(t, e.iss.Revoke(ctx, revoked.ID))
	e.clock.Advance(2 * time.Hour)

	name := "renamed"
	for _, tc := range []struct {
		tok  *apitoken.Token
		want error
	}{{expired, apitoken.ErrExpired}, {revoked, apitoken.ErrRevoked}} {
		s, got, err := e.iss.Regenerate(ctx, tc.tok.ID, apitoken.Days(1))
		assert.ErrorIs(t, err, tc.want, "Regenerate")
		assert.True(t, s.IsZero(), "Regenerate of a frozen token returns no secret")
		assert.Nil(t, got)
		_, err = e.iss.Update(ctx, tc.tok.ID, apitoken.Patch{Name: &name})
		assert.ErrorIs(t, err, tc.want, "Update")
		stored, err := e.iss.Get(ctx, tc.tok.ID)
		require.NoError(t, err)
		assert.Equal(t, tc.tok.Version+btoi(tc.want == apitoken.ErrRevoked), stored.Version, "nothing changed")
	}
	page, err := e.iss.List(ctx, apitoken.Filter{Owner: apitoken.OrgOwner("org_1")})
	require.NoError(t, err)
	assert.Len(t, page.Tokens, 2, "frozen tokens are still listed")
	require.NoError(t, e.iss.Delete(ctx, expired.ID), "and can be deleted")
	require.NoError(t, e.iss.Delete(ctx, revoked.ID))
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func TestConditionalRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	_, tok := e.issue(t, orgSpec())

	const callers = 50
	type result struct {
		s   apitoken.Secret
		err error
	}
	results := make(chan result, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			s, _, err := e.iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}, apitoken.WithIfVersion(tok.Version))
			results <- result{s, err}
		})
	}
	wg.Wait()
	close(results)
	var won []apitoken.Secret
	conflicts := 0
	for r := range results {
		switch {
		case r.err == nil:
			won = append(won, r.s)
		case errors.Is(r.err, apitoken.ErrConflict):
			conflicts++
			assert.True(t, r.s.IsZero(), "a conflict returns no secret")
		default:
			t.Errorf("Regenerate = %v", r.err)
		}
	}
	require.Len(t, won, 1, "exactly one conditional rotation wins")
	assert.Equal(t, callers-1, conflicts)
	_, err := e.v.Validate(ctx, won[0].Reveal(), readDev)
	assert.NoError(t, err, "the winner's secret works")
	stored, err := e.iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	assert.Equal(t, tok.Version+1, stored.Version)

	name := "stale"
	_, err = e.iss.Update(ctx, tok.ID, apitoken.Patch{Name: &name, IfVersion: tok.Version})
	assert.ErrorIs(t, err, apitoken.ErrConflict, "an update conditioned on a stale version")
	got, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{Name: &name, IfVersion: stored.Version})
	require.NoError(t, err)
	assert.Equal(t, "stale", got.Name)
}

func TestSecondRotationDuringGraceEndsTheFirstOldSecret(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	first, tok := e.issue(t, orgSpec())
	second, _, err := e.iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
	require.NoError(t, err)
	e.clock.Advance(time.Minute)
	third, _, err := e.iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
	require.NoError(t, err)

	_, err = e.v.Validate(ctx, first, readDev)
	assert.ErrorIs(t, err, apitoken.ErrUnknown, "the first rotation's old secret stops at once")
	_, err = e.v.Validate(ctx, second.Reveal(), readDev)
	assert.NoError(t, err, "the secret just replaced has the new grace")
	_, err = e.v.Validate(ctx, third.Reveal(), readDev)
	assert.NoError(t, err)
	e.clock.Advance(time.Hour)
	_, err = e.v.Validate(ctx, second.Reveal(), readDev)
	assert.ErrorIs(t, err, apitoken.ErrExpired, "after its grace")
}

func TestNarrowedUserTokenPrincipalIsEffective(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	e.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"admin"}})
	spec := userSpec("u1")
	spec.Roles = []string{"observer"}
	s, _ := e.issue(t, spec)
	p, err := e.v.Validate(ctx, s, apitoken.Request{Org: "org_1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"observer"}, p.Roles, "the token's role, covered by the user's admin")
	assert.True(t, p.HasRole("observer"))
	assert.False(t, p.HasRole("admin"), "the token narrowed admin away")
	assert.Equal(t, apitoken.AccessRead, p.Access("devices"))
	assert.Equal(t, apitoken.AccessNone, p.Access("billing"))

	// A role the user's privileges do not cover is not effective.
	e.dir.set("u2", "org_1", &apitoken.Membership{Roles: []string{"observer"}})
	spec = userSpec("u2")
	spec.Roles = []string{"operator"}
	s2, _ := e.issue(t, spec)
	p, err = e.v.Validate(ctx, s2, apitoken.Request{Org: "org_1"})
	require.NoError(t, err)
	assert.False(t, p.HasRole("operator"))
	assert.Equal(t, apitoken.AccessRead, p.Access("devices"), "the lower of user (read) and token (full)")
	assert.Equal(t, apitoken.AccessNone, p.Access("sites"), "the user has no sites access")

	// Resources intersect; none in common is forbidden.
	e.dir.set("u3", "org_1", &apitoken.Membership{Roles: []string{"admin"}, Resources: []string{"site-a", "site-b"}})
	spec = userSpec("u3")
	spec.Resources = []string{"site-b", "site-c"}
	s3, _ := e.issue(t, spec)
	p, err = e.v.Validate(ctx, s3, apitoken.Request{Org: "org_1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"site-b"}, p.Resources)
	e.dir.set("u3", "org_1", &apitoken.Membership{Roles: []string{"admin"}, Resources: []string{"site-a"}})
	_, err = e.v.Validate(ctx, s3, apitoken.Request{Org: "org_1"})
	assert.ErrorIs(t, err, apitoken.ErrForbidden)
}

func TestRejectionsNameTheirToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())

	_, err := e.v.Validate(ctx, s, apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull})
	var te *apitoken.TokenError
	require.ErrorAs(t, err, &te)
	assert.True(t, only(err, apitoken.ErrForbidden), "%v", err)
	assert.Equal(t, tok.ID, te.TokenID)
	assert.Equal(t, tok.Hint, te.Hint)
	assert.Equal(t, "devices", te.API)
	assert.Equal(t, apitoken.AccessFull, te.Access)
	assert.NotContains(t, err.Error(), s)
	assert.Contains(t, err.Error(), tok.ID)

	require.NoError(t, e.iss.Revoke(ctx, tok.ID))
	_, err = e.v.Validate(ctx, s, readDev)
	require.ErrorAs(t, err, &te)
	assert.Equal(t, tok.ID, te.TokenID)
	assert.True(t, only(err, apitoken.ErrRevoked))

	require.NoError(t, e.iss.Delete(ctx, tok.ID))
	_, err = e.v.Validate(ctx, s, readDev)
	assert.False(t, errors.As(err, &te), "an unknown token names no token: %v", err)
	assert.True(t, only(err, apitoken.ErrUnknown))
	assert.False(t, strings.Contains(err.Error(), s))
}

// zeros is a broken random source: it repeats itself forever.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestDuplicateSecretIsAConflictThatSaysSo forces a repeated secret through
// the Issuer's random source: the second Issue and the Regenerate that
// would take another token's secret fail with ErrConflict saying why, and
// the first token still belongs to its owner and works.
func TestDuplicateSecretIsAConflictThatSaysSo(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	broken, err := apitoken.NewIssuer(e.store, testPolicy(), apitoken.WithClock(e.clock.Now), apitoken.WithRand(zeros{}))
	require.NoError(t, err)
	first, tok, err := broken.Issue(ctx, orgSpec())
	require.NoError(t, err)

	spec := orgSpec()
	spec.OrgID, spec.OwnerID = "org_2", ""
	_, _, err = broken.Issue(ctx, spec)
	require.ErrorIs(t, err, apitoken.ErrConflict)
	assert.Contains(t, err.Error(), "random source")
	got, err := e.iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	assert.Equal(t, apitoken.OrgOwner("org_1"), got.Owner(), "the first token keeps its owner")
	_, err = e.v.Validate(ctx, first.Reveal(), readDev)
	require.NoError(t, err, "and works")

	_, other := e.issue(t, orgSpec())
	_, _, err = broken.Regenerate(ctx, other.ID, apitoken.Lifetime{})
	require.ErrorIs(t, err, apitoken.ErrConflict)
	assert.Contains(t, err.Error(), "already another token's", "not \"concurrent writers\"")
	_, err = e.v.Validate(ctx, first.Reveal(), readDev)
	require.NoError(t, err, "the first token still works")
}

func TestPolicyStatus(t *testing.T) {
	e := newEnv(t, testPolicy())
	_, tok := e.issue(t, orgSpec())
	now := e.clock.Now()
	loose := testPolicy()
	assert.Equal(t, apitoken.StatusActive, loose.Status(tok, now))
	tight := testPolicy()
	tight.MaxLifetime, tight.DefaultLifetime = apitoken.Days(30), apitoken.Days(30)
	assert.True(t, tight.ExpiresAt(tok).Equal(t0.Add(30*24*time.Hour)), "the current MaxLifetime caps the expiry")
	assert.Equal(t, apitoken.StatusExpired, tight.Status(tok, now.Add(31*24*time.Hour)))
	require.NoError(t, e.iss.Revoke(t.Context(), tok.ID))
	got, err := e.iss.Get(t.Context(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, apitoken.StatusRevoked, loose.Status(got, now))
}

func TestIssuerPolicyIsACopy(t *testing.T) {
	pol := testPolicy()
	iss, err := apitoken.NewIssuer(memstore.New(), pol)
	require.NoError(t, err)
	got := iss.Policy()
	assert.Equal(t, pol, got)
	got.Roles["observer"].Grants["devices"] = apitoken.AccessFull
	got.IPFilters["office"][0] = "0.0.0.0/0"
	pol.Roles["observer"].Grants["billing"] = apitoken.AccessFull // the caller's own map, after NewIssuer
	again := iss.Policy()
	assert.Equal(t, apitoken.AccessRead, again.Roles["observer"].Grants["devices"])
	assert.Equal(t, "10.0.0.0/8", again.IPFilters["office"][0])
	assert.NotContains(t, again.Roles["observer"].Grants, "billing")
}
