// Command quickstart issues, validates and revokes an API token on the
// in-memory store. Run it from the repository root:
//
//	go run ./examples/quickstart
//
// Everything it prints is the same on every run except the token itself
// (its plaintext and its hint).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// The security policy the host sets once: the token prefix, the roles
	// tokens may hold, and how long tokens live unless a request says
	// otherwise.
	policy := apitoken.Policy{
		Prefix:          "acme",
		DefaultLifetime: apitoken.Months(6),
		Roles: map[string]apitoken.Role{
			"observer": {
				Description: "read-only access to devices",
				Grants:      apitoken.Grants{"devices": apitoken.AccessRead},
			},
		},
	}

	// A fixed clock keeps this example's output repeatable. Real programs
	// leave WithClock out and get time.Now.
	now := time.Date(2026, time.January, 15, 9, 30, 0, 0, time.UTC)
	clock := apitoken.WithClock(func() time.Time { return now })

	// One store, shared by the Issuer (writes) and the Validator (the hot
	// path). Both must get the same policy and hash keys.
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, policy, clock)
	if err != nil {
		return err
	}
	v, err := apitoken.NewValidator(store, policy, clock)
	if err != nil {
		return err
	}
	// The Validator writes last-used times in the background by itself;
	// Close writes the rest.
	defer v.Close(ctx)

	// Issue an org token. Lifetime is left zero: the policy default applies.
	secret, tok, err := iss.Issue(ctx, apitoken.Spec{
		Kind:  apitoken.KindOrg,
		OrgID: "org_1",
		Name:  "ci",
		Roles: []string{"observer"},
	})
	if err != nil {
		return err
	}
	fmt.Println("== issue")
	fmt.Printf("issued %q (%s token of %s), expires %s\n",
		tok.Name, tok.Kind, tok.OwnerID, tok.ExpiresAt.Format(time.DateOnly))
	// The plaintext exists only here; show it to its owner exactly once.
	fmt.Println("shown once:", secret.Reveal())
	// From now on only the hint is shown. Printing the Secret itself also
	// prints the hint: it redacts itself in fmt, JSON and slog.
	fmt.Println("hint:", secret)

	// A client presents the token; the server validates it for the request
	// it makes: a read of the devices API in org_1.
	presented := secret.Reveal()
	req := apitoken.Request{
		IP:     netip.MustParseAddr("203.0.113.7"),
		Org:    "org_1",
		API:    "devices",
		Access: apitoken.AccessRead,
	}
	fmt.Println("\n== validate: read devices")
	p, err := v.Validate(ctx, presented, req)
	if err != nil {
		return err
	}
	fmt.Printf("ok: name=%s kind=%s owner=%s org=%s roles=%v\n", p.Name, p.Kind, p.OwnerID, p.OrgID, p.Roles)
	fmt.Printf("    access to devices=%s, to billing=%s, expires %s\n",
		p.Access("devices"), p.Access("billing"), p.ExpiresAt.Format(time.DateOnly))

	// The observer role grants read only, so a write is denied.
	fmt.Println("\n== validate: full access to devices")
	full := req
	full.Access = apitoken.AccessFull
	_, err = v.Validate(ctx, presented, full)
	fmt.Println("denied:", err)
	fmt.Println("errors.Is(err, apitoken.ErrForbidden) =", errors.Is(err, apitoken.ErrForbidden))

	// A typo fails the checksum before any store lookup.
	fmt.Println("\n== validate: a mistyped token")
	_, err = v.Validate(ctx, typo(presented), req)
	fmt.Println("errors.Is(err, apitoken.ErrMalformed) =", errors.Is(err, apitoken.ErrMalformed))

	// Revoking takes effect at once.
	fmt.Println("\n== revoke")
	if err := iss.Revoke(ctx, tok.ID); err != nil {
		return err
	}
	_, err = v.Validate(ctx, presented, req)
	fmt.Println("after revoke:", err)
	fmt.Println("errors.Is(err, apitoken.ErrRevoked) =", errors.Is(err, apitoken.ErrRevoked))
	return nil
}

// typo changes the last character of s.
func typo(s string) string {
	c := byte('x')
	if s[len(s)-1] == c {
		c = 'y'
	}
	return s[:len(s)-1] + string(c)
}
