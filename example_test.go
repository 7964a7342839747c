package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

var examplePolicy = apitoken.Policy{
	Prefix:           "acme",
	AllowedLifetimes: []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)},
	DefaultLifetime:  apitoken.Months(6),
	Roles: map[string]apitoken.Role{
		"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
	},
	IPFilters: map[string][]string{"office": {"203.0.113.0/24"}},
}

func ExampleIssuer_Issue() {
	ctx := context.Background()
	clock := func() time.Time { return time.Date(2026, 8, 31, 9, 0, 0, 0, time.UTC) }
	iss, err := apitoken.NewIssuer(memstore.New(), examplePolicy, apitoken.WithClock(clock))
	if err != nil {
		panic(err)
	}
	secret, tok, err := iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci",
		Roles: []string{"observer"}, IPFilter: "office",
	})
	if err != nil {
		panic(err)
	}
	// secret.Reveal() is the plaintext: show it to the owner once.
	fmt.Println(strings.HasPrefix(secret.Reveal(), "acme_"), len(secret.Reveal()))
	// Everything else shows only the hint.
	fmt.Println(fmt.Sprint(secret) == tok.Hint)
	fmt.Println(tok.ExpiresAt.Format(time.DateOnly)) // 6 months, clamped to February's end

	// A request that breaks the policy names the rule it broke.
	_, _, err = iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "forever", Lifetime: apitoken.Months(24),
	})
	var pe *apitoken.PolicyError
	fmt.Println(errors.Is(err, apitoken.ErrPolicy), errors.As(err, &pe) && pe.Rule == "AllowedLifetimes")
	// Output:
	// true 41
	// true
	// 2027-02-28
	// true true
}

func ExampleValidator_Validate() {
	ctx := context.Background()
	store := memstore.New()
	iss, _ := apitoken.NewIssuer(store, examplePolicy)
	v, _ := apitoken.NewValidator(store, examplePolicy)
	secret, tok, _ := iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}, IPFilter: "office",
	})
	presented := secret.Reveal() // what a client sends

	office := netip.MustParseAddr("203.0.113.9")
	p, err := v.Validate(ctx, presented, apitoken.Request{IP: office, Org: "org_1", API: "devices", Access: apitoken.AccessRead})
	fmt.Println(err, p.TokenID == tok.ID, p.Access("devices"))

	_, err = v.Validate(ctx, presented, apitoken.Request{IP: office, Org: "org_1", API: "devices", Access: apitoken.AccessFull})
	fmt.Println(errors.Is(err, apitoken.ErrForbidden))

	_, err = v.Validate(ctx, presented, apitoken.Request{IP: netip.MustParseAddr("198.51.100.1"), Org: "org_1"})
	fmt.Println(errors.Is(err, apitoken.ErrIPNotAllowed))

	_ = iss.Revoke(ctx, tok.ID)
	_, err = v.Validate(ctx, presented, apitoken.Request{IP: office, Org: "org_1"})
	fmt.Println(errors.Is(err, apitoken.ErrRevoked))

	_ = v.Close(ctx) // flushes last-used times
	// Output:
	// <nil> true read
	// true
	// true
	// true
}
