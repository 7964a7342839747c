package apitoken_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// escalation is the reference model of the no-escalation rule, written
// apart from the Issuer's code: the roles of propertyPolicy, what each
// includes (itself among them, transitively) and grants, and the ceiling
// of a token's own rate limit.
var escalation = struct {
	apis     []string
	within   map[string][]string
	grants   map[string]apitoken.Grants
	ceiling  apitoken.Limit
	limits   []*apitoken.Limit
	resource []string
}{
	apis: []string{"devices", "billing", "sites", "other", apitoken.AllAPIs},
	within: map[string][]string{
		"admin":    {"admin", "operator", "observer"},
		"operator": {"operator", "observer"},
		"observer": {"observer"},
		"auditor":  {"auditor"},
		"wild":     {"wild"},
	},
	grants: map[string]apitoken.Grants{
		"admin":    {"billing": apitoken.AccessFull},
		"operator": {"devices": apitoken.AccessFull},
		"observer": {"sites": apitoken.AccessRead},
		"auditor":  {"billing": apitoken.AccessRead},
		"wild":     {apitoken.AllAPIs: apitoken.AccessRead},
	},
	ceiling: apitoken.Limit{Rate: 10, Burst: 10},
	limits: []*apitoken.Limit{nil, nil, nil, {}, {Rate: 5, Burst: 5}, {Rate: 10, Burst: 10},
		{Rate: 11, Burst: 10}, {Rate: 10, Burst: 11}, {Rate: 1e300, Burst: 2e9}},
	resource: []string{"r1", "r2", "r3"},
}

func propertyPolicy() apitoken.Policy {
	roles := map[string]apitoken.Role{}
	for name, g := range escalation.grants {
		roles[name] = apitoken.Role{Grants: g}
	}
	roles["admin"] = apitoken.Role{Grants: escalation.grants["admin"], Includes: []string{"operator"}}
	roles["operator"] = apitoken.Role{Grants: escalation.grants["operator"], Includes: []string{"observer"}}
	return apitoken.Policy{Prefix: "acme", Roles: roles, OrgRateLimit: escalation.ceiling}
}

// level is the reference access of roles and grants to api.
func level(roles []string, grants apitoken.Grants, api string) apitoken.Access {
	a := grants.For(api)
	for _, r := range roles {
		for _, in := range escalation.within[r] {
			a = max(a, escalation.grants[in].For(api))
		}
	}
	return a
}

// mayCreate is the rule itself: could a manager holding m have created t?
func mayCreate(m *apitoken.Principal, t *apitoken.Token) bool {
	for _, r := range t.Roles {
		held := false
		for _, mr := range m.Roles {
			held = held || slices.Contains(escalation.within[mr], r)
		}
		if !held {
			return false
		}
	}
	for _, api := range escalation.apis {
		if level(t.Roles, t.Grants, api) > level(m.Roles, m.Grants, api) {
			return false
		}
	}
	if len(m.Resources) > 0 {
		if len(t.Resources) == 0 {
			return false
		}
		for _, r := range t.Resources {
			if !slices.Contains(m.Resources, r) {
				return false
			}
		}
	}
	if l := t.RateLimit; l != nil && (l.IsZero() || l.Rate > escalation.ceiling.Rate || l.Burst > escalation.ceiling.Burst) {
		return false
	}
	return true
}

// draw returns a random privilege set: roles, grants and resources.
func draw(r *rand.Rand, p float64) ([]string, apitoken.Grants, []string) {
	var roles []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range escalation.grants {
			if !yield(k) {
				return
			}
		}
	}) {
		if r.Float64() < p {
			roles = append(roles, name)
		}
	}
	var grants apitoken.Grants
	for _, api := range escalation.apis {
		if r.Float64() < p {
			if grants == nil {
				grants = apitoken.Grants{}
			}
			grants[api] = apitoken.Access(r.IntN(3))
		}
	}
	var resources []string
	if r.IntN(2) == 0 {
		for _, res := range escalation.resource {
			if r.IntN(2) == 0 {
				resources = append(resources, res)
			}
		}
	}
	return roles, grants, resources
}

func drawManager(r *rand.Rand) *apitoken.Principal {
	roles, grants, resources := draw(r, 0.35)
	return &apitoken.Principal{Roles: roles, Grants: grants, Resources: resources}
}

func drawSpec(r *rand.Rand) apitoken.Spec {
	roles, grants, resources := draw(r, 0.25)
	return apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "t", Roles: roles, Grants: grants,
		Resources: resources, RateLimit: escalation.limits[r.IntN(len(escalation.limits))]}
}

// privs describes the privileges of a *Principal or a *Token, nothing else
// (never a hash).
func privs(x any) string {
	switch x := x.(type) {
	case *apitoken.Principal:
		if x != nil {
			return fmt.Sprintf("{roles %v grants %v resources %v}", x.Roles, x.Grants, x.Resources)
		}
	case *apitoken.Token:
		if x != nil {
			return fmt.Sprintf("{roles %v grants %v resources %v rate limit %v}", x.Roles, x.Grants, x.Resources, x.RateLimit)
		}
	}
	return "none"
}

// TestNoEscalationProperty checks the invariant of issue 20 over random
// managers × tokens × operations: Issue, Update, Regenerate and Recover
// succeed exactly when the reference model says the manager could have
// created the token they would write or show, and a refused operation
// returns no key and changes nothing. One manager rides in the context
// (WithPrivileges); sometimes a second one in Spec/Patch.IssuedBy, and then
// both must hold.
func TestNoEscalationProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 20))
	pol := propertyPolicy()
	iss, err := apitoken.NewIssuer(memstore.New(), pol, apitoken.WithSealKeys(bytes.Repeat([]byte{4}, 32)), quietAudit)
	require.NoError(t, err)
	operator := context.Background()

	// victim issues a token as the operator: one the policy allows.
	victim := func() *apitoken.Token {
		for {
			if _, tok, err := iss.Issue(operator, drawSpec(r)); err == nil {
				return tok
			}
		}
	}
	const rounds = 3000
	counts := map[string][2]int{} // op → allowed, refused
	for i := range rounds {
		m := drawManager(r)
		ctx := apitoken.WithPrivileges(operator, m)
		var by *apitoken.Principal
		if r.IntN(5) == 0 {
			by = drawManager(r)
		}
		may := func(t *apitoken.Token) bool { return mayCreate(m, t) && (by == nil || mayCreate(by, t)) }
		op := []string{"issue", "update", "regenerate", "recover"}[r.IntN(4)]
		what := func() string { return fmt.Sprintf("%s in round %d", op, i) }
		var want bool
		var key apitoken.Secret
		var got *apitoken.Token
		var v *apitoken.Token
		switch op {
		case "issue":
			spec := drawSpec(r)
			spec.IssuedBy = by
			want = may(&apitoken.Token{Roles: spec.Roles, Grants: spec.Grants, Resources: spec.Resources, RateLimit: spec.RateLimit})
			key, got, err = iss.Issue(ctx, spec)
		case "update":
			v = victim()
			roles, grants, resources := draw(r, 0.25)
			p := apitoken.Patch{IssuedBy: by}
			next := *v
			if r.IntN(2) == 0 {
				p.Roles, next.Roles = &roles, roles
			}
			if r.IntN(2) == 0 {
				p.Grants, next.Grants = &grants, grants
			}
			if r.IntN(2) == 0 {
				p.Resources, next.Resources = &resources, resources
			}
			if l := escalation.limits[r.IntN(len(escalation.limits))]; l != nil {
				p.RateLimit, next.RateLimit = l, l
			}
			want = may(&next)
			got, err = iss.Update(ctx, v.ID, p)
		case "regenerate":
			if by != nil {
				ctx = apitoken.WithPrivileges(ctx, by) // nested: both apply
			}
			v = victim()
			want = may(v)
			key, got, err = iss.Regenerate(ctx, v.ID, apitoken.Lifetime{})
		case "recover":
			if by != nil {
				ctx = apitoken.WithPrivileges(ctx, by)
			}
			v = victim()
			want = may(v)
			key, err = iss.Recover(ctx, v.ID)
		}
		c := counts[op]
		if err == nil {
			c[0]++
		} else {
			c[1]++
		}
		counts[op] = c
		require.Equal(t, want, err == nil, "seed %d, %s: manager %s, by %s, token %s: %v", seed, what(), privs(m), privs(by), privs(v), err)
		if err != nil {
			require.ErrorIs(t, err, apitoken.ErrPolicy, "seed %d, %s", seed, what())
			require.Empty(t, key.Reveal(), "seed %d, %s: no key on refusal", seed, what())
			if v != nil {
				stored, err := iss.Get(operator, v.ID)
				require.NoError(t, err)
				require.Equal(t, v.Version, stored.Version, "seed %d, %s: nothing changed", seed, what())
			}
			continue
		}
		if got != nil {
			require.True(t, may(got), "seed %d, %s: the written token is one the manager could have created", seed, what())
		}
	}
	for op, c := range counts {
		// Both outcomes must occur, or the draw tests nothing.
		require.Positive(t, c[0], "%s: never allowed (seed %d)", op, seed)
		require.Positive(t, c[1], "%s: never refused (seed %d)", op, seed)
	}
	t.Logf("seed %d: allowed/refused %v", seed, counts)
}
