package apitoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParsePolicy reads a policy file: the JSON form of a [Policy], with
// lifetimes and durations written as people write them. Every field is
// optional, as in a Policy:
//
//	{
//	  "prefix": "acme",
//	  "default_lifetime": "6 months",
//	  "max_lifetime": "12 months",
//	  "allowed_lifetimes": ["3 months", "6 months", "12 months"],
//	  "require_expiry": true,
//	  "idle_timeout": "90 days",
//	  "expired_retention": "30 days",
//	  "require_ip_filter": false,
//	  "ip_filters": {"office": ["203.0.113.0/24", "2001:db8::/32"]},
//	  "allow_inline_ip_filter": false,
//	  "roles": {
//	    "observer": {"description": "reads devices", "grants": {"devices": "read"}},
//	    "admin": {"grants": {"*": "full"}, "includes": ["observer"],
//	              "rate_limit": {"requests": 100, "per": "1 second", "burst": 200}}
//	  },
//	  "default_roles": ["observer"],
//	  "max_tokens_per_owner": 20,
//	  "org_rate_limit": {"requests": 60, "per": "1 minute", "burst": 10},
//	  "user_rate_limit": {"requests": 600, "per": "1 minute", "burst": 60},
//	  "max_rate_limit": {"requests": 100, "per": "1 second", "burst": 200},
//	  "allow_no_rate_limit": false,
//	  "max_grace": "1 day"
//	}
//
// A lifetime is "30 seconds", "15 minutes", "12 hours", "90 days" or "6
// months" (singular or plural; a week counts seven days), "none" (no
// expiry), or a short form [ParseLifetime] reads ("6mo", "90d"). A duration
// (idle_timeout, expired_retention, max_grace, a rate limit's "per") is a
// lifetime without months; idle_timeout "none" disables the idle timeout.
// Access levels are "none", "read" or "full". [Policy.MarshalJSON] writes
// a Policy in this form.
//
// name names the file in errors. A mistake is a [*PolicyFileError] giving
// the file, the line and the JSON field (it matches [ErrPolicy]): malformed
// JSON, an unknown field, a value of the wrong type or form, or a policy
// rule the result breaks.
func ParsePolicy(name string, data []byte) (Policy, error) {
	fields, err := jsonFields(data)
	if err != nil {
		return Policy{}, fileErr(name, data, err)
	}
	var p Policy
	for _, f := range fields {
		if err := setPolicyField(&p, f); err != nil {
			return Policy{}, fileErr(name, data, err)
		}
	}
	if err := p.Validate(); err != nil {
		var pe *PolicyError
		if !errors.As(err, &pe) {
			return Policy{}, err
		}
		key := policyFileKey(pe.Rule)
		fe := &PolicyFileError{File: name, Field: key, Detail: pe.Rule + ": " + pe.Detail}
		if i := slices.IndexFunc(fields, func(f jsonField) bool { return f.key == key }); i >= 0 {
			fe.Line = lineAt(data, fields[i].offset)
		}
		return Policy{}, fe
	}
	return p, nil
}

// LoadPolicy reads the policy file at path; see [ParsePolicy]. A file that
// cannot be read is the os error; a mistake in it a [*PolicyFileError].
func LoadPolicy(path string) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("apitoken: policy file: %w", err)
	}
	return ParsePolicy(path, data)
}

// A PolicyFileError reports a mistake in a policy file. It matches
// [ErrPolicy] under errors.Is.
type PolicyFileError struct {
	File string
	// Line is the 1-based line of the mistake (of its field, for a
	// value that breaks a rule); 0 when the file does not say (a rule
	// broken by a field left out).
	Line int
	// Field is the JSON field, dotted for nested ones ("roles.admin");
	// empty for malformed JSON.
	Field  string
	Detail string
}

// Error returns "apitoken: <file>:<line>: <field>: <detail>".
func (e *PolicyFileError) Error() string {
	var b strings.Builder
	b.WriteString("apitoken: " + e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Detail)
	return b.String()
}

// Is reports whether target is [ErrPolicy].
func (e *PolicyFileError) Is(target error) bool { return target == ErrPolicy }

// jsonField is one member of a JSON object: its key, its raw value and
// the offset of the key in the input.
type jsonField struct {
	key    string
	raw    json.RawMessage
	offset int64
}

// fieldErr is a mistake at offset, in field.
type fieldErr struct {
	field  string
	offset int64
	detail string
}

func (e *fieldErr) Error() string { return e.detail }

// jsonFields splits the JSON object in data into its members, in order,
// refusing duplicate keys and trailing data.
func jsonFields(data []byte) ([]jsonField, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, syntaxErr(dec, err, "want a JSON object")
	}
	var out []jsonField
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxErr(dec, err, "malformed JSON")
		}
		key := tok.(string)
		f := jsonField{key: key, offset: start + int64(bytes.IndexByte(data[start:], '"'))}
		if slices.ContainsFunc(out, func(g jsonField) bool { return g.key == key }) {
			return nil, &fieldErr{key, f.offset, "given twice"}
		}
		if err := dec.Decode(&f.raw); err != nil {
			return nil, syntaxErr(dec, err, "malformed JSON")
		}
		out = append(out, f)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxErr(dec, err, "malformed JSON")
	}
	if _, err := dec.Token(); err == nil {
		return nil, &fieldErr{"", dec.InputOffset(), "data after the policy object"}
	}
	return out, nil
}

func syntaxErr(dec *json.Decoder, err error, detail string) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &fieldErr{"", se.Offset, detail + ": " + se.Error()}
	}
	return &fieldErr{"", dec.InputOffset(), detail}
}

// fileErr turns err, a *fieldErr, into a *PolicyFileError for file name.
func fileErr(name string, data []byte, err error) error {
	var fe *fieldErr
	if !errors.As(err, &fe) {
		return &PolicyFileError{File: name, Detail: err.Error()}
	}
	return &PolicyFileError{File: name, Line: lineAt(data, fe.offset), Field: fe.field, Detail: fe.detail}
}

// lineAt returns the 1-based line of offset in data.
func lineAt(data []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(data)))
	return 1 + bytes.Count(data[:offset], []byte{'\n'})
}

// roleFile and limitFile are the JSON forms of a Role and a Limit.
type roleFile struct {
	Description string    `json:"description,omitzero"`
	Grants      Grants    `json:"grants,omitzero"`
	Includes    []string  `json:"includes,omitzero"`
	RateLimit   limitFile `json:"rate_limit,omitzero"`
}

type limitFile struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"`
	Burst    int    `json:"burst"`
}

// policyFile is the JSON form of a Policy, as MarshalJSON writes it: in
// the order of ParsePolicy's example, a field at its zero value left out,
// but a non-nil empty slice or map written (omitzero), so that it reads
// back as one.
type policyFile struct {
	Prefix              string              `json:"prefix,omitzero"`
	DefaultLifetime     string              `json:"default_lifetime,omitzero"`
	MaxLifetime         string              `json:"max_lifetime,omitzero"`
	AllowedLifetimes    []string            `json:"allowed_lifetimes,omitzero"`
	RequireExpiry       bool                `json:"require_expiry,omitzero"`
	IdleTimeout         string              `json:"idle_timeout,omitzero"`
	ExpiredRetention    string              `json:"expired_retention,omitzero"`
	RequireIPFilter     bool                `json:"require_ip_filter,omitzero"`
	IPFilters           map[string][]string `json:"ip_filters,omitzero"`
	AllowInlineIPFilter bool                `json:"allow_inline_ip_filter,omitzero"`
	Roles               map[string]roleFile `json:"roles,omitzero"`
	DefaultRoles        []string            `json:"default_roles,omitzero"`
	MaxTokensPerOwner   int                 `json:"max_tokens_per_owner,omitzero"`
	OrgRateLimit        limitFile           `json:"org_rate_limit,omitzero"`
	UserRateLimit       limitFile           `json:"user_rate_limit,omitzero"`
	MaxRateLimit        limitFile           `json:"max_rate_limit,omitzero"`
	AllowNoRateLimit    bool                `json:"allow_no_rate_limit,omitzero"`
	MaxGrace            string              `json:"max_grace,omitzero"`
}

// MarshalJSON returns p in the form of a policy file, which [ParsePolicy]
// (and [Policy.UnmarshalJSON]) reads back equal, to reflect.DeepEqual: a
// host generates the file its operators' tools load (the apitoken CLI's
// --policy) from its Go policy, instead of keeping two by hand:
//
//	b, err := json.MarshalIndent(policy, "", "  ")
//
// Fields at their zero value are left out; a non-nil empty slice or map is
// written as [] or {}. Lifetimes and durations are written in words ("6
// months", "90 days"; an exact duration as Go writes it, "36h30m0s"), a
// rate as whole requests per the shortest of a second, a minute, an hour
// and a day that expresses it exactly (7 per 90 seconds is 280 per hour),
// or else per another duration (1 per 7 seconds). Errors: an invalid policy is its
// [*PolicyError]; a rate no whole number of requests per duration of at
// most [MaxLifetimeSpan] expresses exactly (1e-12 per second, 1e300 per
// second), or a duration over MaxLifetimeSpan, is an error naming the
// field.
func (p Policy) MarshalJSON() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var errs []error
	lifetime := func(l Lifetime) string {
		switch l.unit {
		case unitDefault:
			return ""
		case unitNone:
			return "none"
		case unitDuration:
			return l.String()
		}
		return l.Words()
	}
	duration := func(field string, d time.Duration) string {
		s, err := durationText(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return s
	}
	limit := func(field string, l Limit) limitFile {
		if l.IsZero() {
			return limitFile{}
		}
		n, per, ok := perDuration(l.Rate)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: a rate of %v/s is no whole number of requests per duration", field, float64(l.Rate)))
		}
		return limitFile{Requests: n, Per: per, Burst: l.Burst}
	}
	f := policyFile{
		Prefix:              p.Prefix,
		DefaultLifetime:     lifetime(p.DefaultLifetime),
		MaxLifetime:         lifetime(p.MaxLifetime),
		RequireExpiry:       p.RequireExpiry,
		RequireIPFilter:     p.RequireIPFilter,
		IPFilters:           p.IPFilters,
		AllowInlineIPFilter: p.AllowInlineIPFilter,
		DefaultRoles:        p.DefaultRoles,
		MaxTokensPerOwner:   p.MaxTokensPerOwner,
		OrgRateLimit:        limit("org_rate_limit", p.OrgRateLimit),
		UserRateLimit:       limit("user_rate_limit", p.UserRateLimit),
		MaxRateLimit:        limit("max_rate_limit", p.MaxRateLimit),
		AllowNoRateLimit:    p.AllowNoRateLimit,
	}
	if p.AllowedLifetimes != nil {
		f.AllowedLifetimes = make([]string, len(p.AllowedLifetimes))
		for i, l := range p.AllowedLifetimes {
			f.AllowedLifetimes[i] = lifetime(l)
		}
	}
	switch p.IdleTimeout {
	case 0:
	case NoIdleTimeout:
		f.IdleTimeout = "none"
	default:
		f.IdleTimeout = duration("idle_timeout", p.IdleTimeout)
	}
	if p.ExpiredRetention != 0 {
		f.ExpiredRetention = duration("expired_retention", p.ExpiredRetention)
	}
	if p.MaxGrace != 0 {
		f.MaxGrace = duration("max_grace", p.MaxGrace)
	}
	if p.Roles != nil {
		f.Roles = make(map[string]roleFile, len(p.Roles))
		for name, r := range p.Roles {
			f.Roles[name] = roleFile{Description: r.Description, Grants: r.Grants, Includes: r.Includes,
				RateLimit: limit("roles."+name+".rate_limit", r.RateLimit)}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("apitoken: policy file: %w", err)
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads a policy file, as [ParsePolicy] does (its errors
// name the file "policy"), so a Policy inside a host's own JSON
// configuration is written and read in the file's form. JSON null leaves
// p as it is.
func (p *Policy) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	v, err := ParsePolicy("policy", data)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// durationText writes a positive duration as durationWords reads it back,
// exactly: whole days, hours, minutes or seconds in words, else as Go
// writes it ("1.5s").
func durationText(d time.Duration) (string, error) {
	if d <= 0 || d > MaxLifetimeSpan {
		return "", fmt.Errorf("%v cannot be written (a policy file holds durations from 1ns to 100 years)", d)
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d%u.d == 0 {
			if n := d / u.d; n != 1 {
				return strconv.FormatInt(int64(n), 10) + " " + u.name + "s", nil
			}
			return "1 " + u.name, nil
		}
	}
	return d.String(), nil
}

// perDuration returns n requests per a duration in words such that
// Per(n, per) == r exactly. It walks the continued-fraction convergents
// n/k of r in requests per second, then per millisecond, microsecond and
// nanosecond, for k such units up to MaxLifetimeSpan, and writes the
// duration as the shortest of a second, a minute, an hour and a day that k
// divides, or else as k units. ok is false when no convergent is exact.
func perDuration(r Rate) (n int, per string, ok bool) {
	for _, scale := range []time.Duration{time.Second, time.Millisecond, time.Microsecond, time.Nanosecond} {
		maxK := float64(MaxLifetimeSpan / scale)
		x := float64(r) * scale.Seconds()
		h1, h2, k1, k2 := 1.0, 0.0, 0.0, 1.0 // the last two convergents h/k
		for range 64 {
			a := math.Floor(x)
			h, k := a*h1+h2, a*k1+k2
			if k > maxK || h > 1<<53 {
				break
			}
			if h >= 1 {
				for _, unit := range []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour, time.Duration(k) * scale} {
					units := float64(unit / scale)
					if math.Mod(units, k) != 0 {
						continue
					}
					if m := h * units / k; m <= 1<<53 && Per(int(m), unit) == r {
						s, _ := durationText(unit)
						return int(m), s, true
					}
				}
			}
			frac := x - a
			if frac <= 0 || math.IsInf(1/frac, 0) {
				break
			}
			x, h1, h2, k1, k2 = 1/frac, h, h1, k, k1
		}
	}
	return 0, "", false
}

// setPolicyField sets the Policy field that f names.
func setPolicyField(p *Policy, f jsonField) error {
	bad := func(detail string) error { return &fieldErr{f.key, f.offset, detail} }
	decode := func(dst any) error {
		dec := json.NewDecoder(bytes.NewReader(f.raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				at := ""
				if te.Field != "" {
					at = " at " + te.Field
				}
				return bad("got a JSON " + te.Value + at + ", want " + jsonKind(te.Type))
			}
			return bad(strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil
	}
	lifetime := func(dst *Lifetime) error {
		var s string
		if err := decode(&s); err != nil {
			return err
		}
		l, err := lifetimeWords(s)
		if err != nil {
			return bad(err.Error())
		}
		*dst = l
		return nil
	}
	duration := func(dst *time.Duration, none time.Duration) error {
		var s string
		if err := decode(&s); err != nil {
			return err
		}
		d, err := durationWords(s, none)
		if err != nil {
			return bad(err.Error())
		}
		*dst = d
		return nil
	}
	limit := func(dst *Limit, lf limitFile) error {
		if lf == (limitFile{}) {
			return nil
		}
		per, err := durationWords(lf.Per, 0)
		if err != nil || per <= 0 {
			return bad(`rate_limit "per" wants a duration such as "1 minute"`)
		}
		*dst = Limit{Rate: Per(lf.Requests, per), Burst: lf.Burst}
		return nil
	}
	switch f.key {
	case "prefix":
		return decode(&p.Prefix)
	case "default_lifetime":
		return lifetime(&p.DefaultLifetime)
	case "max_lifetime":
		return lifetime(&p.MaxLifetime)
	case "allowed_lifetimes":
		var ss []string
		if err := decode(&ss); err != nil {
			return err
		}
		if ss != nil { // [] reads back as an empty, non-nil slice
			p.AllowedLifetimes = make([]Lifetime, 0, len(ss))
		}
		for _, s := range ss {
			l, err := lifetimeWords(s)
			if err != nil {
				return bad(err.Error())
			}
			p.AllowedLifetimes = append(p.AllowedLifetimes, l)
		}
		return nil
	case "require_expiry":
		return decode(&p.RequireExpiry)
	case "idle_timeout":
		return duration(&p.IdleTimeout, NoIdleTimeout)
	case "expired_retention":
		return duration(&p.ExpiredRetention, 0)
	case "require_ip_filter":
		return decode(&p.RequireIPFilter)
	case "ip_filters":
		return decode(&p.IPFilters)
	case "allow_inline_ip_filter":
		return decode(&p.AllowInlineIPFilter)
	case "roles":
		var roles map[string]roleFile
		if err := decode(&roles); err != nil {
			return err
		}
		p.Roles = make(map[string]Role, len(roles))
		for name, r := range roles {
			role := Role{Description: r.Description, Grants: r.Grants, Includes: r.Includes}
			if err := limit(&role.RateLimit, r.RateLimit); err != nil {
				return &fieldErr{f.key + "." + name, f.offset, err.Error()}
			}
			p.Roles[name] = role
		}
		return nil
	case "default_roles":
		return decode(&p.DefaultRoles)
	case "max_tokens_per_owner":
		return decode(&p.MaxTokensPerOwner)
	case "org_rate_limit", "user_rate_limit", "max_rate_limit":
		var lf limitFile
		if err := decode(&lf); err != nil {
			return err
		}
		switch f.key {
		case "org_rate_limit":
			return limit(&p.OrgRateLimit, lf)
		case "user_rate_limit":
			return limit(&p.UserRateLimit, lf)
		}
		return limit(&p.MaxRateLimit, lf)
	case "allow_no_rate_limit":
		return decode(&p.AllowNoRateLimit)
	case "max_grace":
		return duration(&p.MaxGrace, 0)
	}
	return bad("unknown field")
}

// policyFileKey returns the JSON key of the Policy field a PolicyError's
// rule names (the rule itself when it names none).
func policyFileKey(rule string) string {
	if k, ok := policyFileKeys[rule]; ok {
		return k
	}
	return rule
}

var policyFileKeys = map[string]string{
	"Prefix": "prefix", "DefaultLifetime": "default_lifetime", "MaxLifetime": "max_lifetime",
	"AllowedLifetimes": "allowed_lifetimes", "RequireExpiry": "require_expiry", "IdleTimeout": "idle_timeout",
	"ExpiredRetention": "expired_retention", "RequireIPFilter": "require_ip_filter", "IPFilters": "ip_filters",
	"AllowInlineIPFilter": "allow_inline_ip_filter", "Roles": "roles", "DefaultRoles": "default_roles",
	"MaxTokensPerOwner": "max_tokens_per_owner", "OrgRateLimit": "org_rate_limit", "UserRateLimit": "user_rate_limit",
	"MaxRateLimit": "max_rate_limit", "AllowNoRateLimit": "allow_no_rate_limit", "MaxGrace": "max_grace",
}

// lifetimeWords parses a lifetime of a policy file: what ParseLifetime
// reads, but not the zero Lifetime (leave the field out for the default).
func lifetimeWords(s string) (Lifetime, error) {
	l, err := ParseLifetime(strings.TrimSpace(s))
	if err != nil || l.IsZero() {
		return Lifetime{}, fmt.Errorf("%q is not a lifetime (want e.g. \"15 minutes\", \"90 days\", \"6 months\" or \"none\")", strings.TrimSpace(s))
	}
	return l, nil
}

// durationWords parses a duration as people write it ("90 days", "1
// minute"); "none" is none. Months vary in length, so they are refused.
func durationWords(s string, none time.Duration) (time.Duration, error) {
	if strings.TrimSpace(s) == "none" && none != 0 {
		return none, nil
	}
	l, err := lifetimeWords(s)
	if err == nil && l.Expires() && l.unit != unitMonth {
		return l.ExpiresAt(time.Time{}).Sub(time.Time{}), nil
	}
	return 0, fmt.Errorf("%q is not a duration (want e.g. \"30 minutes\", \"12 hours\" or \"90 days\"; months vary in length)", s)
}

// jsonKind names the JSON form of t, for messages.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}
