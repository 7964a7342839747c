package apitoken

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Role is a named set of grants the policy defines.
type Role struct {
	Description string
	Grants      Grants
	// RateLimit, when set, is the default limit of org tokens holding the
	// role (the highest-rate one wins among several); zero: OrgRateLimit.
	RateLimit Limit
	// Includes names roles this one contains, for a ladder of roles
	// ("admin" includes "operator", which includes "observer"): the role
	// grants what each included role grants, and a manager holding it may
	// give tokens the included roles (see [WithPrivileges]). Inclusion is
	// transitive; an unknown name or a cycle is a policy error.
	Includes []string
}

// The defaults of a Policy's zero durations.
const (
	// DefaultIdleTimeout is the IdleTimeout of a Policy that sets none.
	DefaultIdleTimeout = 90 * 24 * time.Hour
	// DefaultRetention is how long expired and revoked tokens are kept
	// before pruning when the Policy sets no ExpiredRetention.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultMaxGrace is the MaxGrace of a Policy that sets none: a day.
	DefaultMaxGrace = 24 * time.Hour
)

// NoIdleTimeout disables the idle timeout when set as Policy.IdleTimeout.
const NoIdleTimeout time.Duration = -1

// Limits on free-text fields of a token.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxMetadataKeys   = 64
	MaxMetadataLen    = 1024 // per key or value
)

// Policy is the host's security policy for tokens. It is plain data: set it
// once and pass it to [NewIssuer], [NewValidator] and [NewPruner], which
// validate and copy it; an invalid policy is a [*PolicyError] naming the
// field. The zero Policy is valid: prefix "tok", 6-month default lifetime,
// no maximum, 90-day idle timeout, no roles, no limits.
type Policy struct {
	// Prefix starts every token: 1 to 16 of [a-z0-9_], starting with a
	// letter, not ending with '_'. Empty means "tok".
	Prefix string
	// DefaultLifetime applies when a request gives none. Zero means 6
	// months, or if the policy forbids that, the first AllowedLifetimes
	// entry, or MaxLifetime.
	DefaultLifetime Lifetime
	// MaxLifetime bounds every lifetime (and so requires expiry); zero
	// means no maximum.
	MaxLifetime Lifetime
	// AllowedLifetimes, when non-empty, is the exact set of lifetimes a
	// request may ask for, e.g. Months(3), Months(6), Months(12).
	AllowedLifetimes []Lifetime
	// RequireExpiry forbids NoExpiry.
	RequireExpiry bool
	// IdleTimeout rejects (and lets the pruner remove) tokens unused for
	// longer. Zero means DefaultIdleTimeout (90 days); NoIdleTimeout
	// disables it.
	IdleTimeout time.Duration
	// ExpiredRetention is how long expired or revoked tokens are kept
	// (listed, shown as expired) before the pruner removes them. Zero
	// means DefaultRetention (30 days).
	ExpiredRetention time.Duration
	// RequireIPFilter makes every token carry an IP filter.
	RequireIPFilter bool
	// IPFilters names sets of CIDR prefixes (or single addresses) tokens
	// may refer to, e.g. "office": {"203.0.113.0/24", "2001:db8::/32"}.
	IPFilters map[string][]string
	// AllowInlineIPFilter lets a token carry its own prefixes instead of a
	// named filter.
	AllowInlineIPFilter bool
	// Roles defines the roles tokens may hold and the grants each implies.
	Roles map[string]Role
	// DefaultRoles are given to an org token requested with no roles and no
	// grants.
	DefaultRoles []string
	// MaxTokensPerOwner bounds the live (unrevoked, unexpired) tokens of one
	// owner; zero means no bound.
	MaxTokensPerOwner int
	// OrgRateLimit is the default limit of each org token (see also
	// Role.RateLimit and Spec.RateLimit); UserRateLimit is the limit shared
	// by all tokens of one user. Zero: no limit.
	OrgRateLimit  Limit
	UserRateLimit Limit
	// MaxRateLimit is the highest limit an org token's own RateLimit may
	// set (Spec.RateLimit, Patch.RateLimit): neither its Rate nor its
	// Burst may exceed its. Zero means the limit the token would have
	// without one of its own (its roles' RateLimit, or OrgRateLimit), so
	// an override can only lower it. A token's own zero Limit ("no
	// limit") needs AllowNoRateLimit, unless that ceiling is itself no
	// limit. Issue, Update, Regenerate and Recover check it; a token
	// stored with a higher limit before the policy said so keeps that
	// limit when it validates, until it is updated.
	MaxRateLimit Limit
	// AllowNoRateLimit lets an org token's own RateLimit be the zero
	// Limit: no limit at all.
	AllowNoRateLimit bool
	// MaxGrace bounds the grace period of [Issuer.Regenerate] (WithGrace):
	// how long a replaced secret may keep working. Zero means
	// DefaultMaxGrace (a day). The grace never runs past the token's
	// expiry either.
	MaxGrace time.Duration
}

// policy is a validated, copied Policy with parsed filters.
type policy struct {
	prefix          string
	defaultLifetime Lifetime
	maxLifetime     Lifetime
	allowed         []Lifetime
	requireExpiry   bool
	idleTimeout     time.Duration // 0: disabled
	retention       time.Duration
	requireIPFilter bool
	filters         map[string][]netip.Prefix
	allowInlineIP   bool
	roles           map[string]Grants
	defaultRoles    []string
	maxPerOwner     int
	orgLimit        Limit
	userLimit       Limit
	roleLimits      map[string]Limit
	maxLimit        Limit
	allowNoLimit    bool
	maxGrace        time.Duration
	// within maps each role to the roles it includes, itself among them
	// (transitively); roles already holds the included roles' grants.
	within map[string][]string
}

// Clone returns a deep copy of p: its slices and maps are new.
func (p Policy) Clone() Policy {
	p.AllowedLifetimes = slices.Clone(p.AllowedLifetimes)
	if p.IPFilters != nil {
		filters := make(map[string][]string, len(p.IPFilters))
		for k, v := range p.IPFilters {
			filters[k] = slices.Clone(v)
		}
		p.IPFilters = filters
	}
	if p.Roles != nil {
		roles := make(map[string]Role, len(p.Roles))
		for k, r := range p.Roles {
			r.Grants = maps.Clone(r.Grants)
			r.Includes = slices.Clone(r.Includes)
			roles[k] = r
		}
		p.Roles = roles
	}
	p.DefaultRoles = slices.Clone(p.DefaultRoles)
	return p
}

// Validate reports whether p is a valid policy, as the constructors do.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}

func (p Policy) compile() (*policy, error) {
	c := &policy{
		prefix:          p.Prefix,
		maxLifetime:     p.MaxLifetime,
		allowed:         slices.Clone(p.AllowedLifetimes),
		requireExpiry:   p.RequireExpiry || p.MaxLifetime.Expires(),
		idleTimeout:     p.IdleTimeout,
		retention:       p.ExpiredRetention,
		requireIPFilter: p.RequireIPFilter,
		filters:         make(map[string][]netip.Prefix, len(p.IPFilters)),
		allowInlineIP:   p.AllowInlineIPFilter,
		roles:           make(map[string]Grants, len(p.Roles)),
		defaultRoles:    slices.Clone(p.DefaultRoles),
		maxPerOwner:     p.MaxTokensPerOwner,
		orgLimit:        p.OrgRateLimit,
		userLimit:       p.UserRateLimit,
		maxLimit:        p.MaxRateLimit,
		allowNoLimit:    p.AllowNoRateLimit,
		maxGrace:        p.MaxGrace,
	}
	if c.prefix == "" {
		c.prefix = "tok"
	}
	if !validPrefix(c.prefix) {
		return nil, policyErr("Prefix", "want 1 to 16 of [a-z0-9_], starting with a letter, not ending with '_'")
	}
	switch {
	case p.IdleTimeout == 0:
		c.idleTimeout = DefaultIdleTimeout
	case p.IdleTimeout == NoIdleTimeout:
		c.idleTimeout = 0
	case p.IdleTimeout < 0:
		return nil, policyErr("IdleTimeout", "negative (use NoIdleTimeout to disable)")
	}
	switch {
	case p.ExpiredRetention == 0:
		c.retention = DefaultRetention
	case p.ExpiredRetention < 0:
		return nil, policyErr("ExpiredRetention", "negative")
	}
	if !p.MaxLifetime.valid() || p.MaxLifetime == NoExpiry {
		return nil, policyErr("MaxLifetime", "must be a positive lifetime, or zero for no maximum")
	}
	for i, l := range p.AllowedLifetimes {
		if !l.valid() || l.IsZero() {
			return nil, policyErr("AllowedLifetimes", fmt.Sprintf("entry %d is not a valid lifetime", i))
		}
	}
	if !p.DefaultLifetime.valid() {
		return nil, policyErr("DefaultLifetime", "not a valid lifetime")
	}
	c.defaultLifetime = p.DefaultLifetime
	if c.defaultLifetime.IsZero() {
		switch {
		case c.checkEverywhen(Months(6)) == nil:
			c.defaultLifetime = Months(6)
		case len(c.allowed) > 0:
			c.defaultLifetime = c.allowed[0]
		default:
			c.defaultLifetime = c.maxLifetime
		}
	}
	if err := c.checkEverywhen(c.defaultLifetime); err != nil {
		return nil, policyErr("DefaultLifetime", c.defaultLifetime.Words()+" breaks "+ruleOf(err))
	}
	for _, l := range c.allowed {
		if err := c.checkEverywhen(l); err != nil {
			return nil, policyErr("AllowedLifetimes", "the entry "+l.Words()+" breaks "+ruleOf(err))
		}
	}
	for name, cidrs := range p.IPFilters {
		if name == "" {
			return nil, policyErr("IPFilters", "empty filter name")
		}
		if len(cidrs) == 0 {
			return nil, policyErr("IPFilters", fmt.Sprintf("filter %q has no prefixes", name))
		}
		prefixes := make([]netip.Prefix, 0, len(cidrs))
		for _, s := range cidrs {
			pfx, err := ParsePrefix(s)
			if err != nil {
				return nil, policyErr("IPFilters", fmt.Sprintf("filter %q: %s", name, strings.TrimPrefix(err.Error(), "apitoken: ")))
			}
			prefixes = append(prefixes, pfx)
		}
		c.filters[name] = prefixes
	}
	for name, r := range p.Roles {
		if name == "" {
			return nil, policyErr("Roles", "empty role name")
		}
		if err := checkGrants(r.Grants); err != nil {
			return nil, policyErr("Roles", fmt.Sprintf("role %q: %v", name, err))
		}
		c.roles[name] = maps.Clone(r.Grants)
		if err := r.RateLimit.validate("Roles"); err != nil {
			return nil, policyErr("Roles", fmt.Sprintf("role %q: rate limit: %v", name, err.(*PolicyError).Detail))
		}
		if !r.RateLimit.IsZero() {
			if c.roleLimits == nil {
				c.roleLimits = map[string]Limit{}
			}
			c.roleLimits[name] = r.RateLimit
		}
	}
	if err := c.includeRoles(p.Roles); err != nil {
		return nil, err
	}
	for _, r := range p.DefaultRoles {
		if _, ok := c.roles[r]; !ok {
			return nil, policyErr("DefaultRoles", fmt.Sprintf("unknown role %q", r))
		}
	}
	if p.MaxTokensPerOwner < 0 {
		return nil, policyErr("MaxTokensPerOwner", "negative")
	}
	if err := p.OrgRateLimit.validate("OrgRateLimit"); err != nil {
		return nil, err
	}
	if err := p.UserRateLimit.validate("UserRateLimit"); err != nil {
		return nil, err
	}
	if err := p.MaxRateLimit.validate("MaxRateLimit"); err != nil {
		return nil, err
	}
	switch {
	case p.MaxGrace == 0:
		c.maxGrace = DefaultMaxGrace
	case p.MaxGrace < 0:
		return nil, policyErr("MaxGrace", "negative")
	}
	if p.RequireIPFilter && len(p.IPFilters) == 0 && !p.AllowInlineIPFilter {
		return nil, policyErr("RequireIPFilter", "no token could be issued: define IPFilters or set AllowInlineIPFilter")
	}
	return c, nil
}

// limitDefaults returns the policy's limits.
func (c *policy) limitDefaults() LimitDefaults {
	return LimitDefaults{Org: c.orgLimit, User: c.userLimit, Roles: c.roleLimits}
}

// checkRateLimit fails if org token t's own rate limit exceeds the
// ceiling: MaxRateLimit, or else the limit t would have without its own.
func (c *policy) checkRateLimit(t *Token) error {
	if t.RateLimit == nil {
		return nil
	}
	l, ceiling := *t.RateLimit, c.maxLimit
	if ceiling.IsZero() {
		u := *t
		u.RateLimit = nil
		_, ceiling = c.limitDefaults().LimitFor(&u)
	}
	switch {
	case ceiling.IsZero():
		return nil
	case l.IsZero() && !c.allowNoLimit:
		return &PolicyError{Rule: "MaxRateLimit", Field: "RateLimit",
			Detail: fmt.Sprintf("no limit is not allowed (the policy allows at most %s)", ceiling)}
	case l.Rate > ceiling.Rate || l.Burst > ceiling.Burst:
		return &PolicyError{Rule: "MaxRateLimit", Field: "RateLimit",
			Detail: fmt.Sprintf("%s exceeds the maximum of %s", l, ceiling)}
	}
	return nil
}

// includeRoles checks every Role.Includes, records each role's closure in
// c.within and adds the included roles' grants to c.roles.
func (c *policy) includeRoles(roles map[string]Role) error {
	c.within = make(map[string][]string, len(roles))
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		for _, in := range roles[name].Includes {
			if _, ok := roles[in]; !ok {
				return policyErr("Roles", fmt.Sprintf("role %q includes unknown role %q", name, in))
			}
		}
	}
	// closure walks the inclusions from name depth first; path holds the
	// roles being walked, so meeting one of them again is a cycle.
	var closure func(name string, path []string) ([]string, error)
	closure = func(name string, path []string) ([]string, error) {
		if got, ok := c.within[name]; ok {
			return got, nil
		}
		if i := slices.Index(path, name); i >= 0 {
			return nil, policyErr("Roles", "roles include each other in a cycle: "+strings.Join(append(path[i:], name), " → "))
		}
		set := []string{name}
		for _, in := range roles[name].Includes {
			sub, err := closure(in, append(path, name))
			if err != nil {
				return nil, err
			}
			for _, r := range sub {
				if !slices.Contains(set, r) {
					set = append(set, r)
				}
			}
		}
		c.within[name] = set
		return set, nil
	}
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		set, err := closure(name, nil)
		if err != nil {
			return err
		}
		g := c.roles[name]
		for _, in := range set[1:] {
			for api, level := range c.roles[in] {
				if level > g[api] {
					if g == nil {
						g = Grants{}
					}
					g[api] = level
				}
			}
		}
		c.roles[name] = g
	}
	return nil
}

// ruleOf returns "<rule>: <detail>" of a *PolicyError, for a rule that
// another one breaks; any other error's text without its package prefix.
func ruleOf(err error) string {
	if pe, ok := err.(*PolicyError); ok {
		return pe.Rule + ": " + pe.Detail
	}
	return strings.TrimPrefix(err.Error(), "apitoken: ")
}
