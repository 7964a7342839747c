package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// ladderPolicy has a ladder of roles: admin includes operator, which
// includes observer; token-admin includes reader; an org token is limited
// to 10 requests at once, 10 a second.
func ladderPolicy() apitoken.Policy {
	return apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"admin":       {Grants: apitoken.Grants{"billing": apitoken.AccessFull}, Includes: []string{"operator"}},
			"operator":    {Grants: apitoken.Grants{"devices": apitoken.AccessFull}, Includes: []string{"observer"}},
			"observer":    {Grants: apitoken.Grants{"sites": apitoken.AccessRead}},
			"token-admin": {Grants: apitoken.Grants{"devices": apitoken.AccessFull, "apitokens": apitoken.AccessFull}, Includes: []string{"reader"}},
			"reader":      {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
		},
		OrgRateLimit:        apitoken.Limit{Rate: 10, Burst: 10},
		AllowInlineIPFilter: true,
	}
}

// managerCtx is the context of a manager holding p.
func managerCtx(p *apitoken.Principal) context.Context {
	return apitoken.WithPrivileges(apitoken.WithActor(context.Background(), "user:mallory"), p)
}

// requireRule asserts that err is a *PolicyError of the given rule.
func requireRule(t *testing.T, err error, rule string) {
	t.Helper()
	var pe *apitoken.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, rule, pe.Rule, "rule of %v", err)
}

// TestRegenerateNoEscalation: the attacks of issue 20. An observer-level
// manager regenerates the scope's admin token, and a manager limited to
// resource r1 regenerates an unrestricted token: each is refused, gets no
// key, and the token and its old key are as they were. Before, each got a
// working key with the victim's privileges.
func TestRegenerateNoEscalation(t *testing.T) {
	tests := []struct {
		name    string
		manager *apitoken.Principal
		victim  apitoken.Spec
		field   string
	}{
		{"observer regenerates the admin token", &apitoken.Principal{Roles: []string{"observer"}},
			apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "admin", Roles: []string{"admin"}}, "Roles"},
		{"manager of r1 regenerates an unrestricted token",
			&apitoken.Principal{Roles: []string{"admin"}, Resources: []string{"r1"}},
			apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "all sites", Roles: []string{"observer"}}, "Resources"},
		{"reader regenerates a token with full devices access", &apitoken.Principal{Roles: []string{"reader"}},
			apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "deploy",
				Grants: apitoken.Grants{"devices": apitoken.AccessFull}}, "Grants"},
		{"nil privileges hold nothing", nil,
			apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "obs", Roles: []string{"observer"}}, "Roles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, ladderPolicy())
			old, victim := e.issue(t, tc.victim) // by the operator

			secret, got, err := e.iss.Regenerate(managerCtx(tc.manager), victim.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
			requireRule(t, err, "NoEscalation")
			var pe *apitoken.PolicyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.field, pe.Field)
			assert.Empty(t, secret.Reveal(), "no key")
			assert.Nil(t, got)

			stored, err := e.iss.Get(context.Background(), victim.ID)
			require.NoError(t, err)
			assert.Equal(t, victim.Version, stored.Version, "nothing changed")
			assert.Equal(t, victim.Hash, stored.Hash)
			_, err = e.v.Validate(context.Background(), old, apitoken.Request{Org: "org_1"})
			assert.NoError(t, err, "the victim's key still works")

			// The operator (no privileges in the context) may regenerate it.
			_, _, err = e.iss.Regenerate(context.Background(), victim.ID, apitoken.Lifetime{})
			assert.NoError(t, err)
		})
	}
}

// TestRecoverNoEscalation: an observer-level manager may not have the key
// of the admin token shown; a manager who could have created a token may,
// and the reveal is logged at Warn with the actor, with no audit hook set.
func TestRecoverNoEscalation(t *testing.T) {
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, ladderPolicy(), apitoken.WithSealKeys(bytes.Repeat([]byte{5}, 32)), apitoken.WithLogger(logger))
	require.NoError(t, err)
	_, admin, err := iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "admin", Roles: []string{"admin"}})
	require.NoError(t, err)
	secret, obs, err := iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "obs", Roles: []string{"observer"}})
	require.NoError(t, err)

	observer := managerCtx(&apitoken.Principal{Roles: []string{"observer"}})
	got, err := iss.Recover(observer, admin.ID)
	requireRule(t, err, "NoEscalation")
	assert.Empty(t, got.Reveal())
	assert.Empty(t, logged.String(), "a refused reveal shows nothing and logs no reveal")

	got, err = iss.Recover(observer, obs.ID)
	require.NoError(t, err)
	assert.True(t, got.Reveal() == secret.Reveal(), "the observer's own kind of token")
	assert.Contains(t, logged.String(), "level=WARN")
	assert.Contains(t, logged.String(), `actor=user:mallory`)
	assert.Contains(t, logged.String(), "token_id="+obs.ID)
	assert.NotContains(t, logged.String(), secret.Reveal())
}

// TestSealKeysNeedATrail: recoverable tokens without an audit hook or a
// logger are refused at construction, with a message that says what to add.
func TestSealKeysNeedATrail(t *testing.T) {
	_, err := apitoken.NewIssuer(memstore.New(), ladderPolicy(), apitoken.WithSealKeys(bytes.Repeat([]byte{5}, 32)))
	require.EqualError(t, err, "apitoken: NewIssuer: WithSealKeys needs WithAudit or WithLogger: every key shown again (Issuer.Recover) must leave a trace")
}

// TestRateLimitCeiling: a token's own limit is a privilege. The attack:
// an observer-level manager issues an org token with no limit ({0, 0}) or
// an absurd one ({1e300, 2e9}) where the policy allows 10; before, both
// were accepted and 200 of 200 requests passed.
func TestRateLimitCeiling(t *testing.T) {
	observer := managerCtx(&apitoken.Principal{Roles: []string{"observer"}})
	spec := func(l apitoken.Limit) apitoken.Spec {
		return apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "bot", Roles: []string{"observer"}, RateLimit: &l}
	}
	tests := []struct {
		name   string
		policy func(*apitoken.Policy)
		limit  apitoken.Limit
		want   string // the error, or "" for none
	}{
		{"no limit", nil, apitoken.Limit{},
			"apitoken: policy: MaxRateLimit: no limit is not allowed (the policy allows at most 10/s, burst 10)"},
		{"absurd limit", nil, apitoken.Limit{Rate: 1e300, Burst: 2e9},
			"apitoken: policy: MaxRateLimit: 1e+300/s, burst 2000000000 exceeds the maximum of 10/s, burst 10"},
		{"burst above", nil, apitoken.Limit{Rate: 1, Burst: 11},
			"apitoken: policy: MaxRateLimit: 1/s, burst 11 exceeds the maximum of 10/s, burst 10"},
		{"lower is fine", nil, apitoken.Limit{Rate: apitoken.Per(2, time.Minute), Burst: 10}, ""},
		{"up to MaxRateLimit", func(p *apitoken.Policy) { p.MaxRateLimit = apitoken.Limit{Rate: 100, Burst: 50} },
			apitoken.Limit{Rate: 100, Burst: 50}, ""},
		{"above MaxRateLimit", func(p *apitoken.Policy) { p.MaxRateLimit = apitoken.Limit{Rate: 100, Burst: 50} },
			apitoken.Limit{Rate: 101, Burst: 50}, "apitoken: policy: MaxRateLimit: 101/s, burst 50 exceeds the maximum of 100/s, burst 50"},
		{"no limit where allowed", func(p *apitoken.Policy) { p.AllowNoRateLimit = true }, apitoken.Limit{}, ""},
		{"anything under a policy without limits", func(p *apitoken.Policy) { p.OrgRateLimit = apitoken.Limit{} },
			apitoken.Limit{Rate: 1e300, Burst: 2e9}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pol := ladderPolicy()
			if tc.policy != nil {
				tc.policy(&pol)
			}
			e := newEnv(t, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter()))
			secret, tok, err := e.iss.Issue(observer, spec(tc.limit))
			if tc.want != "" {
				require.EqualError(t, err, tc.want)
				requireRule(t, err, "MaxRateLimit")
				assert.Equal(t, "rate_limit", adminField(err))
				// Update is held to the same ceiling.
				_, plain := e.issue(t, spec(apitoken.Limit{Rate: 1, Burst: 1}))
				l := tc.limit
				_, err = e.iss.Update(observer, plain.ID, apitoken.Patch{RateLimit: &l})
				require.EqualError(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.limit, *tok.RateLimit)
			_, err = e.v.Validate(context.Background(), secret.Reveal(), apitoken.Request{Org: "org_1"})
			assert.NoError(t, err)
		})
	}
	t.Run("the attack: 200 requests", func(t *testing.T) {
		e := newEnv(t, ladderPolicy(), apitoken.WithLimiter(apitoken.NewLocalLimiter()))
		secret, _, err := e.iss.Issue(observer, spec(apitoken.Limit{}))
		require.ErrorIs(t, err, apitoken.ErrPolicy)
		if err != nil { // as it must: then the default limit applies
			var s apitoken.Secret
			s, _, err = e.iss.Issue(observer, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "bot", Roles: []string{"observer"}})
			require.NoError(t, err)
			secret = s
		}
		allowed := 0
		for range 200 {
			if _, err := e.v.Validate(context.Background(), secret.Reveal(), apitoken.Request{Org: "org_1"}); err == nil {
				allowed++
			}
		}
		assert.Equal(t, 10, allowed, "the policy's burst, no more")
	})
}

// adminField is the admin API's field for a policy error, spelled here to
// keep the root's tests free of adminapi: the rule's field.
func adminField(err error) string {
	var pe *apitoken.PolicyError
	if errors.As(err, &pe) && pe.Field == "RateLimit" {
		return "rate_limit"
	}
	return ""
}

// TestGraceBounded: the grace after Regenerate is at most the policy's
// MaxGrace (a day by default), so a never-expiring token cannot keep its
// old key "for centuries", and never past the token's expiry.
func TestGraceBounded(t *testing.T) {
	pol := ladderPolicy()
	pol.DefaultLifetime = apitoken.NoExpiry
	e := newEnv(t, pol)
	_, tok := e.issue(t, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "forever", Roles: []string{"observer"}})

	_, _, err := e.iss.Regenerate(context.Background(), tok.ID, apitoken.NoExpiry, apitoken.WithGrace(100*365*24*time.Hour))
	require.EqualError(t, err, "apitoken: policy: MaxGrace: a grace period of 876000h0m0s exceeds the maximum of 24h0m0s")
	_, _, err = e.iss.Regenerate(context.Background(), tok.ID, apitoken.NoExpiry, apitoken.WithGrace(25*time.Hour))
	requireRule(t, err, "MaxGrace")
	_, _, err = e.iss.Regenerate(context.Background(), tok.ID, apitoken.NoExpiry, apitoken.WithGrace(-time.Second))
	requireRule(t, err, "MaxGrace")
	stored, err := e.iss.Get(context.Background(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, tok.Version, stored.Version, "refused regenerations change nothing")

	_, got, err := e.iss.Regenerate(context.Background(), tok.ID, apitoken.NoExpiry, apitoken.WithGrace(24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(24*time.Hour), got.PrevExpiresAt)

	// A longer maximum is the host's choice; the token's expiry still caps it.
	pol.MaxGrace = 7 * 24 * time.Hour
	pol.DefaultLifetime = apitoken.Days(2)
	e = newEnv(t, pol)
	_, tok = e.issue(t, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "two days", Roles: []string{"observer"}})
	_, got, err = e.iss.Regenerate(context.Background(), tok.ID, apitoken.Days(2), apitoken.WithGrace(7*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(48*time.Hour), got.PrevExpiresAt, "not past the old expiry")

	pol.MaxGrace = -time.Hour
	requireRule(t, pol.Validate(), "MaxGrace")
}

// TestRolesIncludeRoles: a manager holding token-admin (which includes
// reader) may issue a reader token without holding reader by name (before:
// "issuer lacks role reader"), a role grants what it includes, and a bad
// inclusion is a policy error at load.
func TestRolesIncludeRoles(t *testing.T) {
	e := newEnv(t, ladderPolicy())
	tokenAdmin := managerCtx(&apitoken.Principal{Roles: []string{"token-admin"}})
	_, _, err := e.iss.Issue(tokenAdmin, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "r", Roles: []string{"reader"}})
	require.NoError(t, err)

	admin := managerCtx(&apitoken.Principal{Roles: []string{"admin"}})
	for _, role := range []string{"admin", "operator", "observer"} {
		_, _, err := e.iss.Issue(admin, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: role, Roles: []string{role}})
		require.NoError(t, err, "admin issues %s (transitively included)", role)
	}
	_, _, err = e.iss.Issue(admin, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "x", Roles: []string{"reader"}})
	requireRule(t, err, "NoEscalation")

	// admin grants billing (its own), devices (operator's) and sites
	// (observer's).
	secret, _ := e.issue(t, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "adm", Roles: []string{"admin"}})
	for _, api := range []string{"billing", "devices", "sites"} {
		_, err := e.v.Validate(context.Background(), secret, apitoken.Request{Org: "org_1", API: api, Access: apitoken.AccessRead})
		assert.NoError(t, err, api)
	}
	_, err = e.v.Validate(context.Background(), secret, apitoken.Request{Org: "org_1", API: "sites", Access: apitoken.AccessFull})
	assert.ErrorIs(t, err, apitoken.ErrForbidden, "observer's sites read does not become full")

	for _, tc := range []struct {
		name  string
		roles map[string]apitoken.Role
		want  string
	}{
		{"unknown", map[string]apitoken.Role{"a": {Includes: []string{"b"}}},
			`apitoken: policy: Roles: role "a" includes unknown role "b"`},
		{"self", map[string]apitoken.Role{"a": {Includes: []string{"a"}}},
			"apitoken: policy: Roles: roles include each other in a cycle: a → a"},
		{"cycle", map[string]apitoken.Role{"a": {Includes: []string{"b"}}, "b": {Includes: []string{"c"}}, "c": {Includes: []string{"a"}}},
			"apitoken: policy: Roles: roles include each other in a cycle: a → b → c → a"},
	} {
		err := apitoken.Policy{Roles: tc.roles}.Validate()
		assert.EqualError(t, err, tc.want, tc.name)
	}
}

// TestHostileText: metadata values refuse control characters as names and
// keys do, and every text field refuses bidirectional overrides, so nothing
// a manager writes rewrites what the next reader sees.
func TestHostileText(t *testing.T) {
	e := newEnv(t, ladderPolicy())
	base := apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ok", Roles: []string{"observer"}}
	for _, tc := range []struct {
		name string
		edit func(*apitoken.Spec)
		rule string
	}{
		{"metadata value with a terminal escape", func(s *apitoken.Spec) {
			s.Metadata = map[string]string{"team": "ops\x1b[1A\x1b[2K\rstatus: revoked\x1b]0;pwned\x07"}
		}, "Metadata"},
		{"metadata value with a carriage return", func(s *apitoken.Spec) { s.Metadata = map[string]string{"k": "a\rb"} }, "Metadata"},
		{"name with a right-to-left override", func(s *apitoken.Spec) { s.Name = "deploy\u202egnp.exe" }, "Name"},
		{"description with an isolate", func(s *apitoken.Spec) { s.Description = "x\u2066y\u2069" }, "Description"},
		{"metadata value with an override", func(s *apitoken.Spec) { s.Metadata = map[string]string{"k": "\u202d"} }, "Metadata"},
	} {
		spec := base
		tc.edit(&spec)
		_, _, err := e.iss.Issue(context.Background(), spec)
		requireRule(t, err, tc.rule)
	}
	spec := base
	spec.Name, spec.Metadata = "ünïcode ✓ עברית", map[string]string{"note": "emoji 🚀 and tabs\tare not"}
	_, _, err := e.iss.Issue(context.Background(), spec)
	requireRule(t, err, "Metadata")
	spec.Metadata = map[string]string{"note": "emoji 🚀, right-to-left עברית"}
	_, _, err = e.iss.Issue(context.Background(), spec)
	require.NoError(t, err, "printable text of any script is fine")
}

// TestPolicyLoadErrors: setups that cannot work fail at load, saying what
// to change.
func TestPolicyLoadErrors(t *testing.T) {
	err := apitoken.Policy{RequireIPFilter: true}.Validate()
	require.EqualError(t, err, "apitoken: policy: RequireIPFilter: no token could be issued: define IPFilters or set AllowInlineIPFilter")
	require.NoError(t, apitoken.Policy{RequireIPFilter: true, AllowInlineIPFilter: true}.Validate())

	_, err = apitoken.NewValidator(memstore.New(), apitoken.Policy{IdleTimeout: 30 * time.Second})
	require.EqualError(t, err, "apitoken: policy: IdleTimeout: 30s is shorter than the flush interval (1m0s): "+
		"a token in use would look idle before its use is written; raise IdleTimeout or lower WithFlushInterval")
	v, err := apitoken.NewValidator(memstore.New(), apitoken.Policy{IdleTimeout: 30 * time.Second}, apitoken.WithFlushInterval(10*time.Second))
	require.NoError(t, err)
	require.NoError(t, v.Close(context.Background()))
}

// TestWildcardReachesNamedAPIs: found by TestNoEscalationProperty. A
// manager with full access to every API but read on billing ({"*": full,
// "billing": read}) issued a token with {"*": full}, which reads and
// writes billing: the check compared only the APIs the token names.
func TestWildcardReachesNamedAPIs(t *testing.T) {
	e := newEnv(t, ladderPolicy())
	by := &apitoken.Principal{Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull, "billing": apitoken.AccessRead}}
	_, _, err := e.iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "wide",
		Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}, IssuedBy: by})
	require.ErrorIs(t, err, apitoken.ErrPolicy)
	require.EqualError(t, err, `apitoken: policy: NoEscalation: issuer lacks full access to "billing"`)
	_, _, err = e.iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "narrow",
		Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull, "billing": apitoken.AccessRead}, IssuedBy: by})
	require.NoError(t, err)
}

// TestHasRoleFollowsIncludes: a validated admin token holds the roles admin
// includes, for httpauth.RequireRole and the host's own checks.
func TestHasRoleFollowsIncludes(t *testing.T) {
	e := newEnv(t, ladderPolicy())
	secret, _ := e.issue(t, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "adm", Roles: []string{"admin"}})
	p, err := e.v.Validate(context.Background(), secret, apitoken.Request{Org: "org_1"})
	require.NoError(t, err)
	for role, want := range map[string]bool{"admin": true, "operator": true, "observer": true, "reader": false, "token-admin": false} {
		assert.Equal(t, want, p.HasRole(role), role)
	}
	assert.False(t, (&apitoken.Principal{Roles: []string{"admin"}}).HasRole("operator"), "without a policy, roles are only what they say")
}
