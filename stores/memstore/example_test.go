package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// Issue a token into a memory store and validate it. Only the outcome is
// printed: the secret and its hint differ on every run.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	policy := apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
		},
	}
	iss, err := apitoken.NewIssuer(store, policy)
	if err != nil {
		log.Fatal(err)
	}
	v, err := apitoken.NewValidator(store, policy)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close(ctx)

	secret, tok, err := iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"},
	})
	if err != nil {
		log.Fatal(err)
	}
	presented := secret.Reveal() // what the client sends

	p, err := v.Validate(ctx, presented, apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read:", p.Name, p.Kind, p.OrgID, p.Access("devices"))

	_, err = v.Validate(ctx, presented, apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull})
	fmt.Println("write:", errors.Is(err, apitoken.ErrForbidden))

	if err := iss.Revoke(ctx, tok.ID); err != nil {
		log.Fatal(err)
	}
	_, err = v.Validate(ctx, presented, apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead})
	fmt.Println("after revoke:", errors.Is(err, apitoken.ErrRevoked)) // the error names the token's ID, which differs on every run
	fmt.Println(store)
	// Output:
	// read: ci org org_1 read
	// write: true
	// after revoke: true
	// memstore.Store(1 tokens)
}
