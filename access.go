package apitoken

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Access is a level of access to one API. Levels are ordered: a higher level
// includes the lower ones.
type Access uint8

// AccessNone is no access: the zero Access.
const AccessNone Access = 0

// AccessRead is read-only access (GET, HEAD and OPTIONS by default).
const AccessRead Access = 1

// AccessFull is read and write access.
const AccessFull Access = 2

// String returns "none", "read" or "full".
func (a Access) String() string {
	switch a {
	case AccessNone:
		return "none"
	case AccessRead:
		return "read"
	case AccessFull:
		return "full"
	}
	return "invalid"
}

// MarshalText encodes a as "none", "read" or "full".
func (a Access) MarshalText() ([]byte, error) {
	if a > AccessFull {
		return nil, fmt.Errorf("apitoken: invalid access level %d", uint8(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText decodes "none", "read" or "full".
func (a *Access) UnmarshalText(b []byte) error {
	switch string(b) {
	case "none":
		*a = AccessNone
	case "read":
		*a = AccessRead
	case "full":
		*a = AccessFull
	default:
		return fmt.Errorf("apitoken: invalid access level %q", b)
	}
	return nil
}

// AllAPIs is the [Grants] key whose level applies to every API without an
// entry of its own.
const AllAPIs = "*"

// Grants maps API names to access levels. The [AllAPIs] entry ("*") applies
// to every API that has no entry of its own, so {"*": full, "billing": none}
// grants everything but billing. A nil Grants grants nothing.
type Grants map[string]Access

// For returns the access level g gives to api.
func (g Grants) For(api string) Access {
	if a, ok := g[api]; ok {
		return a
	}
	return g[AllAPIs]
}

// IPFilter restricts the client addresses a token may be used from: either a
// named filter of the [Policy] (resolved at validation time, so changing the
// policy changes every token that names it) or inline prefixes. The zero
// IPFilter allows every address.
type IPFilter struct {
	Name     string         `json:"name,omitempty"`
	Prefixes []netip.Prefix `json:"prefixes,omitempty"`
}

// IsZero reports whether f allows every address.
func (f IPFilter) IsZero() bool { return f.Name == "" && len(f.Prefixes) == 0 }

// ParsePrefix parses a CIDR prefix or a single address (as a /32 or /128).
// It rejects prefixes with host bits set ("10.1.2.3/8"), which are almost
// always typos, and unmaps IPv4-mapped IPv6 addresses.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("apitoken: invalid address or CIDR %q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("apitoken: invalid CIDR %q", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("apitoken: CIDR %q has host bits set (did you mean %s?)", s, p.Masked())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

func checkPrefixes(ps []netip.Prefix) error {
	for _, p := range ps {
		if !p.IsValid() || p.Masked() != p {
			return fmt.Errorf("invalid or unmasked prefix %s", p)
		}
	}
	return nil
}

func checkGrants(g Grants) error {
	for api, a := range g {
		if api == "" {
			return fmt.Errorf("empty API name")
		}
		if a > AccessFull {
			return fmt.Errorf("API %q: invalid access level %d", api, uint8(a))
		}
	}
	return nil
}

// access returns the level roles and grants give to api under the policy.
// Roles the policy no longer defines grant nothing.
func (c *policy) access(roles []string, grants Grants, api string) Access {
	a := grants.For(api)
	for _, r := range roles {
		if a == AccessFull {
			break
		}
		if g, ok := c.roles[r]; ok {
			a = max(a, g.For(api))
		}
	}
	return a
}

// narrow returns the effective roles and grants of a user who holds
// userRoles and userGrants through a token narrowed to tokRoles and
// tokGrants: the token's roles that the user's privileges cover, and for
// every API either side names (and AllAPIs) the lower of the two levels.
func (c *policy) narrow(userRoles []string, userGrants Grants, tokRoles []string, tokGrants Grants) ([]string, Grants) {
	var roles []string
	for _, r := range tokRoles {
		g, ok := c.roles[r]
		if !ok {
			continue
		}
		covered := slices.Contains(userRoles, r)
		if !covered {
			covered = true
			for api, level := range g {
				if c.access(userRoles, userGrants, api) < level {
					covered = false
					break
				}
			}
		}
		if covered {
			roles = append(roles, r)
		}
	}
	apis := c.apis(userRoles, userGrants)
	for _, api := range c.apis(tokRoles, tokGrants) {
		if !slices.Contains(apis, api) {
			apis = append(apis, api)
		}
	}
	grants := make(Grants, len(apis))
	for _, api := range apis {
		grants[api] = min(c.access(userRoles, userGrants, api), c.access(tokRoles, tokGrants, api))
	}
	return roles, grants
}

// apis returns every API name roles and grants mention, plus AllAPIs.
func (c *policy) apis(roles []string, grants Grants) []string {
	set := map[string]struct{}{AllAPIs: {}}
	for api := range grants {
		set[api] = struct{}{}
	}
	for _, r := range roles {
		for api := range c.roles[r] {
			set[api] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// allowsIP reports whether addr passes filter f under the current policy.
// A filter naming a policy filter that no longer exists allows nothing
// (fails closed), as do no filter under RequireIPFilter and inline prefixes
// the policy no longer allows.
func (c *policy) allowsIP(f IPFilter, addr netip.Addr) bool {
	if f.IsZero() {
		return !c.requireIPFilter
	}
	if f.Name == "" && !c.allowInlineIP {
		return false
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	prefixes := f.Prefixes
	if f.Name != "" {
		prefixes = c.filters[f.Name]
	}
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Access returns the level p has for api: the highest its roles and grants
// give.
func (p *Principal) Access(api string) Access {
	return p.accessUnder(p.pol, api)
}

func (p *Principal) accessUnder(pol *policy, api string) Access {
	if p.pol != nil {
		pol = p.pol
	}
	if pol == nil {
		pol = &policy{}
	}
	return pol.access(p.Roles, p.Grants, api)
}

// HasRole reports whether p holds role: among its Roles or, for a Principal
// a Validator returned, included by one of them ([Role.Includes]).
func (p *Principal) HasRole(role string) bool {
	if p.pol != nil {
		return p.pol.holdsRole(p.Roles, role)
	}
	return slices.Contains(p.Roles, role)
}

// AllowsResource reports whether p may act on resource.
func (p *Principal) AllowsResource(resource string) bool {
	return len(p.Resources) == 0 || slices.Contains(p.Resources, resource)
}

// intersect returns the elements of a that are also in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
