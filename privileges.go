package apitoken

import (
	"context"
	"fmt"
	"slices"
)

// privilegesKey is the context key of the privileges WithPrivileges sets.
type privilegesKey struct{}

// WithPrivileges returns a copy of ctx that says what its caller may grant:
// an [Issuer] called with it gives no token, and no key to one, beyond p's
// roles (held directly or through [Role.Includes]), access levels and
// resources. Issue, Update and Regenerate check the token they would
// write, and Recover the token whose key it would show; each refuses with
// a [*PolicyError] of rule "NoEscalation" and changes nothing. Revoke,
// RevokeAll and Delete stay open: whoever may see a token must be able to
// kill it. A nil p holds nothing. Privileges set twice both apply, so an
// inner call can narrow, never widen, what an outer one set.
//
// A context without privileges is an operator's: full power, as for a
// command-line tool or a host's own code. Spec.IssuedBy and Patch.IssuedBy
// apply on top.
func WithPrivileges(ctx context.Context, p *Principal) context.Context {
	if p == nil {
		p = &Principal{}
	}
	outer, _ := ctx.Value(privilegesKey{}).([]*Principal)
	return context.WithValue(ctx, privilegesKey{}, append(slices.Clip(outer), p))
}

// managers returns the privileges ctx carries, plus by when set.
func managers(ctx context.Context, by *Principal) []*Principal {
	ps, _ := ctx.Value(privilegesKey{}).([]*Principal)
	if by != nil {
		ps = append(slices.Clip(ps), by)
	}
	return ps
}

// mayHold fails unless every manager of ctx (and by) could have created t:
// every role, access level and resource t holds, each also holds.
func (is *Issuer) mayHold(ctx context.Context, t *Token, by *Principal) error {
	for _, p := range managers(ctx, by) {
		if err := is.checkEscalation(t, p); err != nil {
			return err
		}
	}
	return nil
}

// checkEscalation fails unless every role, access level and resource t holds
// is also held by p.
func (is *Issuer) checkEscalation(t *Token, p *Principal) error {
	for _, r := range t.Roles {
		if !is.pol.holdsRole(p.Roles, r) {
			return &PolicyError{Rule: "NoEscalation", Field: "Roles", Detail: fmt.Sprintf("issuer lacks role %q", r)}
		}
	}
	// Every API either side names: a token's "*" reaches an API the
	// manager holds less of by name ({"*": full} against {"billing": read}).
	for _, api := range union(is.pol.apis(t.Roles, t.Grants), is.pol.apis(p.Roles, p.Grants)) {
		if want := is.pol.access(t.Roles, t.Grants, api); want > p.accessUnder(is.pol, api) {
			return &PolicyError{Rule: "NoEscalation", Field: "Grants", Detail: fmt.Sprintf("issuer lacks %s access to %q", want, api)}
		}
	}
	if len(p.Resources) > 0 {
		if len(t.Resources) == 0 {
			return &PolicyError{Rule: "NoEscalation", Field: "Resources", Detail: "issuer is limited to some resources; so must the token be"}
		}
		for _, r := range t.Resources {
			if !p.AllowsResource(r) {
				return &PolicyError{Rule: "NoEscalation", Field: "Resources", Detail: fmt.Sprintf("issuer lacks resource %q", r)}
			}
		}
	}
	return nil
}

// holdsRole reports whether one of roles is role or includes it.
func (c *policy) holdsRole(roles []string, role string) bool {
	for _, r := range roles {
		if r == role || slices.Contains(c.within[r], role) {
			return true
		}
	}
	return false
}

// union returns a with the elements of b it lacks.
func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
