package apitoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
//	    "admin": {"grants": {"*": "full"}, "rate_limit": {"requests": 100, "per": "1 second", "burst": 200}}
//	  },
//	  "default_roles": ["observer"],
//	  "max_tokens_per_owner": 20,
//	  "org_rate_limit": {"requests": 60, "per": "1 minute", "burst": 10},
//	  "user_rate_limit": {"requests": 600, "per": "1 minute", "burst": 60}
//	}
//
// A lifetime is "30 seconds", "15 minutes", "12 hours", "90 days" or "6
// months" (singular or plural; a week counts seven days), "none" (no
// expiry), or a short form [ParseLifetime] reads ("6mo", "90d"). A duration
// (idle_timeout, expired_retention, a rate limit's "per") is a lifetime
// without months; idle_timeout "none" disables the idle timeout. Access
// levels are "none", "read" or "full".
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
	Description string    `json:"description"`
	Grants      Grants    `json:"grants"`
	RateLimit   limitFile `json:"rate_limit"`
}

type limitFile struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"`
	Burst    int    `json:"burst"`
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
			role := Role{Description: r.Description, Grants: r.Grants}
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
	case "org_rate_limit", "user_rate_limit":
		var lf limitFile
		if err := decode(&lf); err != nil {
			return err
		}
		if f.key == "org_rate_limit" {
			return limit(&p.OrgRateLimit, lf)
		}
		return limit(&p.UserRateLimit, lf)
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
