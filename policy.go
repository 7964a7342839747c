package apitoken

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lifetime is how long a token lives: a number of minutes, hours, days or
// calendar months, an exact duration, or [NoExpiry]. The zero Lifetime means
// "the policy's default". Lifetimes are comparable with ==; Months(6) and
// Days(180) are different lifetimes.
type Lifetime struct {
	n    int64
	unit lifetimeUnit
}

type lifetimeUnit uint8

const (
	unitDefault lifetimeUnit = iota
	unitMinute
	unitHour
	unitDay
	unitMonth
	unitDuration // n is nanoseconds
	unitNone
)

// NoExpiry is the Lifetime of a token that never expires, if the policy
// allows it.
var NoExpiry = Lifetime{unit: unitNone}

// Minutes returns a lifetime of n minutes.
func Minutes(n int) Lifetime { return Lifetime{int64(n), unitMinute} }

// Hours returns a lifetime of n hours.
func Hours(n int) Lifetime { return Lifetime{int64(n), unitHour} }

// Days returns a lifetime of n days of 24 hours.
func Days(n int) Lifetime { return Lifetime{int64(n), unitDay} }

// Months returns a lifetime of n calendar months. The expiry falls on the
// same day of the month, or on the month's last day if it is shorter: six
// months from 31 August is 28 (or 29) February, not 3 March.
func Months(n int) Lifetime { return Lifetime{int64(n), unitMonth} }

// For returns a lifetime of exactly d.
func For(d time.Duration) Lifetime { return Lifetime{int64(d), unitDuration} }

// IsZero reports whether l is the zero Lifetime ("the policy's default").
func (l Lifetime) IsZero() bool { return l.unit == unitDefault }

// Expires reports whether tokens with this lifetime expire.
func (l Lifetime) Expires() bool { return l.unit != unitNone && l.unit != unitDefault }

// ExpiresAt returns when a token created at from with lifetime l expires;
// the zero time for NoExpiry or the zero Lifetime.
func (l Lifetime) ExpiresAt(from time.Time) time.Time {
	switch l.unit {
	case unitMinute:
		return from.Add(time.Duration(l.n) * time.Minute)
	case unitHour:
		return from.Add(time.Duration(l.n) * time.Hour)
	case unitDay:
		return from.Add(time.Duration(l.n) * 24 * time.Hour)
	case unitMonth:
		return addMonths(from, int(l.n))
	case unitDuration:
		return from.Add(time.Duration(l.n))
	}
	return time.Time{}
}

// addMonths adds n calendar months to t, clamping the day to the target
// month's length (31 Jan + 1 month = 28/29 Feb), as PostgreSQL intervals
// and java.time do. time.AddDate would normalise to 2/3 March instead.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, t.Location())
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// String returns the form ParseLifetime reads: "30m", "12h", "90d", "6mo",
// "none", a Go duration for For, or "default".
func (l Lifetime) String() string {
	n := strconv.FormatInt(l.n, 10)
	switch l.unit {
	case unitMinute:
		return n + "m"
	case unitHour:
		return n + "h"
	case unitDay:
		return n + "d"
	case unitMonth:
		return n + "mo"
	case unitDuration:
		return time.Duration(l.n).String()
	case unitNone:
		return "none"
	}
	return "default"
}

// MarshalText encodes l as [Lifetime.String] does.
func (l Lifetime) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes what [ParseLifetime] reads.
func (l *Lifetime) UnmarshalText(b []byte) error {
	v, err := ParseLifetime(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLifetime reads "30m", "12h", "90d", "6mo", "none", "default" (or the
// empty string) or any positive Go duration such as "1h30m", up to
// MaxLifetimeSpan.
func ParseLifetime(s string) (Lifetime, error) {
	switch s {
	case "", "default":
		return Lifetime{}, nil
	case "none":
		return NoExpiry, nil
	}
	for _, u := range []struct {
		suffix string
		unit   lifetimeUnit
	}{{"mo", unitMonth}, {"d", unitDay}, {"h", unitHour}, {"m", unitMinute}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil {
				if l := (Lifetime{n, u.unit}); l.valid() {
					return l, nil
				}
			}
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if l := For(d); l.valid() {
			return l, nil
		}
	}
	return Lifetime{}, fmt.Errorf("apitoken: invalid lifetime %q (want e.g. 30m, 12h, 90d, 6mo or none)", s)
}

// MaxLifetimeSpan bounds every Lifetime: 100 years.
const MaxLifetimeSpan = 100 * 366 * 24 * time.Hour

func (l Lifetime) valid() bool {
	var unit time.Duration
	switch l.unit {
	case unitDefault, unitNone:
		return true
	case unitMonth:
		return l.n > 0 && l.n <= 1200
	case unitMinute:
		unit = time.Minute
	case unitHour:
		unit = time.Hour
	case unitDay:
		unit = 24 * time.Hour
	case unitDuration:
		unit = 1
	}
	return l.n > 0 && l.n <= int64(MaxLifetimeSpan/unit) // no overflow
}

// Role is a named set of grants the policy defines.
type Role struct {
	Description string
	Grants      Grants
	// RateLimit, when set, is the default limit of org tokens holding the
	// role (the highest-rate one wins among several); zero: OrgRateLimit.
	RateLimit Limit
}

// DefaultIdleTimeout is the IdleTimeout of a Policy that sets none.
const DefaultIdleTimeout = 90 * 24 * time.Hour

// DefaultRetention is how long expired and revoked tokens are kept before
// pruning when the Policy sets no ExpiredRetention.
const DefaultRetention = 30 * 24 * time.Hour

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
		return nil, policyErr("DefaultLifetime", "breaks the policy: "+err.Error())
	}
	for _, l := range c.allowed {
		if err := c.checkEverywhen(l); err != nil {
			return nil, policyErr("AllowedLifetimes", "entry "+l.String()+" breaks the policy: "+err.Error())
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
				return nil, policyErr("IPFilters", fmt.Sprintf("filter %q: %v", name, err))
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
	return c, nil
}

// checkEverywhen checks l at the first and last day of every month of a
// four-year cycle: month lengths vary, so a lifetime within the maximum on
// one day (30 days vs 1 month in March) can break it on another (February).
func (c *policy) checkEverywhen(l Lifetime) error {
	for m := range 48 {
		first := time.Date(2028, time.Month(1+m), 1, 0, 0, 0, 0, time.UTC)
		for _, at := range []time.Time{first, first.AddDate(0, 1, -1)} {
			if err := c.checkLifetime(l, at, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkLifetime reports whether l (already resolved, not zero), counted
// from now, is allowed for a token whose secret was issued at issued: the
// expiry may not pass issued plus MaxLifetime.
func (c *policy) checkLifetime(l Lifetime, now, issued time.Time) error {
	if !l.valid() {
		return policyErr("Lifetime", "invalid lifetime (at most 100 years)")
	}
	if l == NoExpiry {
		if c.requireExpiry {
			return policyErr("RequireExpiry", "tokens must expire")
		}
	}
	if len(c.allowed) > 0 && !slices.Contains(c.allowed, l) {
		names := make([]string, len(c.allowed))
		for i, a := range c.allowed {
			names[i] = a.String()
		}
		return policyErr("AllowedLifetimes", "lifetime "+l.String()+" is not one of "+strings.Join(names, ", "))
	}
	if c.maxLifetime.Expires() && l.Expires() && l.ExpiresAt(now).After(c.maxLifetime.ExpiresAt(issued)) {
		if now.Equal(issued) {
			return policyErr("MaxLifetime", "lifetime "+l.String()+" exceeds the maximum "+c.maxLifetime.String())
		}
		return policyErr("MaxLifetime", "lifetime "+l.String()+" from now would end after the secret's issue plus the maximum "+
			c.maxLifetime.String()+" (regenerate the token for a new secret)")
	}
	return nil
}

// resolveLifetime returns the lifetime a request asked for, or the default.
func (c *policy) resolveLifetime(l Lifetime) Lifetime {
	if l.IsZero() {
		return c.defaultLifetime
	}
	return l
}

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

// expiry returns when t stops working under the current policy: its own
// expiry, or its secret's issue plus MaxLifetime if that comes first. Under
// RequireExpiry with no MaxLifetime, a token without an expiry has expired
// at its secret's issue. Zero: never.
func (c *policy) expiry(t *Token) time.Time {
	at := t.ExpiresAt
	if c.maxLifetime.Expires() {
		if limit := c.maxLifetime.ExpiresAt(t.SecretIssuedAt()); at.IsZero() || limit.Before(at) {
			at = limit
		}
	}
	if at.IsZero() && c.requireExpiry {
		at = t.SecretIssuedAt()
	}
	return at
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
