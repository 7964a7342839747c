package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// A rotation conditioned on the version the caller last saw: a second click
// on "Regenerate" (or another administrator) conflicts instead of replacing
// the secret the first click just showed.
func ExampleWithIfVersion() {
	ctx := context.Background()
	iss, _ := apitoken.NewIssuer(memstore.New(), examplePolicy)
	_, tok, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})

	_, rotated, err := iss.Regenerate(ctx, tok.ID, apitoken.Months(12), apitoken.WithIfVersion(tok.Version))
	fmt.Println(err, rotated.Version)

	secret, _, err := iss.Regenerate(ctx, tok.ID, apitoken.Months(12), apitoken.WithIfVersion(tok.Version))
	fmt.Println(errors.Is(err, apitoken.ErrConflict), secret.IsZero())
	// Output:
	// <nil> 2
	// true true
}

// A multi-tenant Validator (the default) accepts an org token only in a
// request that names its org; a single-tenant one fills in its org.
func ExampleWithSingleTenant() {
	ctx := context.Background()
	store := memstore.New()
	iss, _ := apitoken.NewIssuer(store, examplePolicy)
	secret, _, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}})
	read := apitoken.Request{API: "devices", Access: apitoken.AccessRead} // no Org

	multi, _ := apitoken.NewValidator(store, examplePolicy)
	_, err := multi.Validate(ctx, secret.Reveal(), read)
	fmt.Println(errors.Is(err, apitoken.ErrUnknown))

	single, _ := apitoken.NewValidator(store, examplePolicy, apitoken.WithSingleTenant("org_1"))
	p, err := single.Validate(ctx, secret.Reveal(), read)
	fmt.Println(err, p.OrgID)
	_ = multi.Close(ctx)
	_ = single.Close(ctx)
	// Output:
	// true
	// <nil> org_1
}

// A rejection of a token the store found names it, for logs and metrics;
// the client learns only the status.
func ExampleTokenError() {
	ctx := context.Background()
	store := memstore.New()
	clock := func() time.Time { return time.Date(2026, 8, 31, 9, 0, 0, 0, time.UTC) }
	iss, _ := apitoken.NewIssuer(store, examplePolicy, apitoken.WithClock(clock))
	v, _ := apitoken.NewValidator(store, examplePolicy, apitoken.WithClock(clock))
	secret, tok, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}})

	_, err := v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull})
	var te *apitoken.TokenError
	if errors.As(err, &te) {
		fmt.Println(te.TokenID == tok.ID, te.API, te.Access, errors.Is(err, apitoken.ErrForbidden))
	}
	_ = v.Close(ctx)
	// Output:
	// true devices full true
}
