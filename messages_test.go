package apitoken_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// TestErrorTextsReadWell: one package prefix per message, and lifetimes in
// the words a policy is written in.
func TestErrorTextsReadWell(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"default breaks the maximum", func() error {
			return apitoken.Policy{MaxLifetime: apitoken.Days(90), DefaultLifetime: apitoken.Months(6)}.Validate()
		}, "apitoken: policy: DefaultLifetime: 6 months breaks MaxLifetime: a lifetime of 6 months exceeds the maximum of 90 days"},
		{"allowed set", func() error {
			iss, err := apitoken.NewIssuer(memstore.New(), apitoken.Policy{AllowedLifetimes: []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(12)}})
			require.NoError(t, err)
			_, _, err = iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "u1", Name: "x", Lifetime: apitoken.For(720 * 60 * 60 * 1e9)})
			return err
		}, "apitoken: policy: AllowedLifetimes: a lifetime of 30 days is not one of 3 months, 12 months"},
		{"bad named filter", func() error {
			return apitoken.Policy{IPFilters: map[string][]string{"office": {"10.1.2.3/8"}}}.Validate()
		}, `apitoken: policy: IPFilters: filter "office": CIDR "10.1.2.3/8" has host bits set (did you mean 10.0.0.0/8?)`},
		{"bad inline prefix", func() error {
			iss, err := apitoken.NewIssuer(memstore.New(), apitoken.Policy{AllowInlineIPFilter: true})
			require.NoError(t, err)
			_, _, err = iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "u1", Name: "x", IPPrefixes: []string{"10.0.0/8"}})
			return err
		}, `apitoken: policy: IPPrefixes: invalid CIDR "10.0.0/8"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			require.ErrorIs(t, err, apitoken.ErrPolicy)
			assert.Equal(t, tc.want, err.Error())
			assert.Equal(t, 1, strings.Count(err.Error(), "apitoken:"), "one package prefix")
		})
	}
}

func TestInlinePrefixesTakeThePolicyForm(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	spec := orgSpec()
	spec.IPPrefixes = []string{"203.0.113.0/24", "10.1.2.3", "::ffff:192.0.2.1"}
	_, tok := e.issue(t, spec)
	got := make([]string, len(tok.IPFilter.Prefixes))
	for i, p := range tok.IPFilter.Prefixes {
		got[i] = p.String()
	}
	assert.Equal(t, []string{"203.0.113.0/24", "10.1.2.3/32", "192.0.2.1/32"}, got, "single addresses and IPv4-mapped ones as the policy reads them")
	spec.IPPrefixes = []string{"office"}
	_, _, err := e.iss.Issue(ctx, spec)
	var pe *apitoken.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "IPPrefixes", pe.Rule)
}

func TestIssuerAll(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	var want []string
	for range 7 {
		_, tok := e.issue(t, orgSpec())
		want = append(want, tok.ID)
	}
	e.issue(t, userSpec("u1"))
	var got []string
	for tok, err := range e.iss.All(ctx, apitoken.Filter{Owner: apitoken.OrgOwner("org_1"), Limit: 3}) {
		require.NoError(t, err)
		got = append(got, tok.ID)
	}
	assert.Equal(t, want, got, "every org token, across pages of 3, in creation order")

	n := 0
	for range e.iss.All(ctx, apitoken.Filter{Limit: 2}) {
		if n++; n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n, "stopping early")

	for tok, err := range e.iss.All(ctx, apitoken.Filter{Cursor: "garbage"}) {
		assert.Nil(t, tok)
		assert.ErrorIs(t, err, apitoken.ErrBadCursor)
	}
}

// TestNoEscalationNamesTheField: a UI can point at the field that asked
// for too much without reading the words.
func TestNoEscalationNamesTheField(t *testing.T) {
	e := newEnv(t, testPolicy())
	by := &apitoken.Principal{Roles: []string{"observer"}, Resources: []string{"site-a"}}
	for field, spec := range map[string]apitoken.Spec{
		"Roles":     {Roles: []string{"admin"}, Resources: []string{"site-a"}},
		"Grants":    {Grants: apitoken.Grants{"billing": apitoken.AccessRead}, Resources: []string{"site-a"}},
		"Resources": {Roles: []string{"observer"}, Resources: []string{"site-b"}},
	} {
		spec.Kind, spec.OrgID, spec.Name, spec.IssuedBy = apitoken.KindOrg, "org_1", "x", by
		_, _, err := e.iss.Issue(context.Background(), spec)
		var pe *apitoken.PolicyError
		require.ErrorAs(t, err, &pe, field)
		assert.Equal(t, "NoEscalation", pe.Rule)
		assert.Equal(t, field, pe.Field)
	}
}
