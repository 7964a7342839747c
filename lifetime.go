package apitoken

import (
	"fmt"
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

// Words returns l as people write it, for messages and forms: "6 months",
// "90 days", "15 minutes", "1 hour", "36h30m0s", "no expiry" or "the
// default".
func (l Lifetime) Words() string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch l.unit {
	case unitMinute:
		return unit(l.n, "minute")
	case unitHour:
		return unit(l.n, "hour")
	case unitDay:
		return unit(l.n, "day")
	case unitMonth:
		return unit(l.n, "month")
	case unitDuration:
		switch d := time.Duration(l.n); {
		case d%(24*time.Hour) == 0:
			return unit(int64(d/(24*time.Hour)), "day")
		case d%time.Hour == 0:
			return unit(int64(d/time.Hour), "hour")
		case d%time.Minute == 0:
			return unit(int64(d/time.Minute), "minute")
		default:
			return d.String()
		}
	case unitNone:
		return "no expiry"
	}
	return "the default"
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

// ParseLifetime reads a lifetime as people write it ("30 seconds", "15
// minutes", "12 hours", "90 days", "2 weeks", "6 months", singular or
// plural), in the short form [Lifetime.String] writes ("30m", "12h", "90d",
// "6mo"), as any positive Go duration ("1h30m"), or "none"; "default" and
// the empty string are the zero Lifetime. Lifetimes are at most
// MaxLifetimeSpan.
func ParseLifetime(s string) (Lifetime, error) {
	if l, ok := lifetimeInWords(s); ok {
		return l, nil
	}
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
	return Lifetime{}, fmt.Errorf("apitoken: invalid lifetime %q (want e.g. \"15 minutes\", \"90 days\", \"6 months\", 6mo or none)", s)
}

// lifetimeInWords reads "<n> <unit>" with the unit a second, minute, hour,
// day, week or month, singular or plural.
func lifetimeInWords(s string) (Lifetime, bool) {
	num, unit, ok := strings.Cut(s, " ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 {
		return Lifetime{}, false
	}
	var l Lifetime
	switch strings.TrimSuffix(strings.TrimSpace(unit), "s") {
	case "second":
		l = For(time.Duration(n) * time.Second)
	case "minute":
		l = Minutes(n)
	case "hour":
		l = Hours(n)
	case "day":
		l = Days(n)
	case "week":
		l = Days(7 * n)
	case "month":
		l = Months(n)
	default:
		return Lifetime{}, false
	}
	return l, l.valid()
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
			names[i] = a.Words()
		}
		return policyErr("AllowedLifetimes", "a lifetime of "+l.Words()+" is not one of "+strings.Join(names, ", "))
	}
	if c.maxLifetime.Expires() && l.Expires() && l.ExpiresAt(now).After(c.maxLifetime.ExpiresAt(issued)) {
		if now.Equal(issued) {
			return policyErr("MaxLifetime", "a lifetime of "+l.Words()+" exceeds the maximum of "+c.maxLifetime.Words())
		}
		return policyErr("MaxLifetime", "a lifetime of "+l.Words()+" from now would end more than "+
			c.maxLifetime.Words()+" after the secret was issued (regenerate the token for a new secret)")
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

// expiry returns when t stops working under the current policy: its own
// expiry, or its secret's issue plus MaxLifetime if that comes first. Under
// RequireExpiry with no MaxLifetime, a token without an expiry has expired
// at its secret's issue. Zero: never.
func (c *policy) expiry(t *Token) time.Time { return expiryUnder(c.maxLifetime, c.requireExpiry, t) }

func expiryUnder(maxLifetime Lifetime, requireExpiry bool, t *Token) time.Time {
	at := t.ExpiresAt
	if maxLifetime.Expires() {
		if limit := maxLifetime.ExpiresAt(t.SecretIssuedAt()); at.IsZero() || limit.Before(at) {
			at = limit
		}
	}
	if at.IsZero() && requireExpiry {
		at = t.SecretIssuedAt()
	}
	return at
}

// ExpiresAt returns when t stops working under p, as a Validator under p
// decides: its own expiry, or its secret's issue plus p.MaxLifetime if that
// comes first; under RequireExpiry, a token without an expiry has expired
// at its secret's issue. Zero: never.
func (p Policy) ExpiresAt(t *Token) time.Time {
	return expiryUnder(p.MaxLifetime, p.RequireExpiry || p.MaxLifetime.Expires(), t)
}

// Status is what a token can still do: a listing shows it, and only an
// active token may be updated, regenerated or revealed.
type Status string

// StatusActive, StatusExpired and StatusRevoked are the statuses of a
// token: working, past its expiry under the current policy, revoked.
const (
	StatusActive  Status = "active"
	StatusExpired Status = "expired"
	StatusRevoked Status = "revoked"
)

// Status returns t's status under p at now: revoked if t was revoked, else
// expired once [Policy.ExpiresAt] has passed, else active.
func (p Policy) Status(t *Token, now time.Time) Status {
	switch at := p.ExpiresAt(t); {
	case t.Revoked():
		return StatusRevoked
	case !at.IsZero() && !now.Before(at):
		return StatusExpired
	}
	return StatusActive
}
