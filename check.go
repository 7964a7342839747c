package apitoken

import (
	"context"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// check validates every field of t against the policy, and t's privileges
// against those of ctx's managers and by (see [WithPrivileges]). It does
// not check the lifetime.
func (is *Issuer) check(ctx context.Context, t *Token, by *Principal) error {
	switch t.Kind {
	case KindUser:
		if t.OwnerID == "" {
			return policyErr("OwnerID", "a user token needs the user's ID")
		}
	case KindOrg:
		if t.OrgID == "" {
			return policyErr("OrgID", "an org token needs an org")
		}
		if t.OwnerID != t.OrgID {
			return policyErr("OwnerID", "an org token is owned by its org")
		}
	default:
		return policyErr("Kind", "want KindUser or KindOrg")
	}
	if err := checkText("Name", t.Name, MaxNameLen); err != nil {
		return err
	}
	if t.Name == "" {
		return policyErr("Name", "required")
	}
	if err := checkText("Description", t.Description, MaxDescriptionLen); err != nil {
		return err
	}
	for _, r := range t.Roles {
		if _, ok := is.pol.roles[r]; !ok {
			return policyErr("Roles", fmt.Sprintf("unknown role %q", r))
		}
	}
	if err := checkGrants(t.Grants); err != nil {
		return policyErr("Grants", err.Error())
	}
	for _, r := range t.Resources {
		if err := checkText("Resources", r, MaxNameLen); err != nil || r == "" {
			return policyErr("Resources", "resource IDs must be non-empty printable text")
		}
	}
	if len(t.Metadata) > MaxMetadataKeys {
		return policyErr("Metadata", fmt.Sprintf("more than %d keys", MaxMetadataKeys))
	}
	for k, v := range t.Metadata {
		if k == "" || checkText("Metadata", k, MaxMetadataLen) != nil || checkText("Metadata", v, MaxMetadataLen) != nil {
			return policyErr("Metadata", "keys must be non-empty; keys and values printable text of at most 1024 bytes of UTF-8, "+
				"without control characters or bidirectional overrides")
		}
	}
	switch f := t.IPFilter; {
	case f.Name != "" && len(f.Prefixes) > 0:
		return policyErr("IPFilter", "set a named filter or inline prefixes, not both")
	case f.Name != "":
		if _, ok := is.pol.filters[f.Name]; !ok {
			return policyErr("IPFilters", fmt.Sprintf("no IP filter named %q", f.Name))
		}
	case len(f.Prefixes) > 0:
		if !is.pol.allowInlineIP {
			return policyErr("AllowInlineIPFilter", "tokens may only name a policy IP filter")
		}
		if err := checkPrefixes(f.Prefixes); err != nil {
			return policyErr("IPFilter", err.Error())
		}
	case is.pol.requireIPFilter:
		return policyErr("RequireIPFilter", "tokens must carry an IP filter")
	}
	if t.RateLimit != nil {
		if t.Kind == KindUser {
			return policyErr("RateLimit", "user tokens share their user's budget (Policy.UserRateLimit)")
		}
		if err := t.RateLimit.validate("RateLimit"); err != nil {
			return err
		}
	}
	if t.Kind == KindOrg {
		if err := is.pol.checkRateLimit(t); err != nil {
			return err
		}
	}
	return is.mayHold(ctx, t, by)
}

func checkText(rule, s string, maxLen int) error {
	if len(s) > maxLen {
		return policyErr(rule, fmt.Sprintf("longer than %d bytes", maxLen))
	}
	if !utf8.ValidString(s) {
		return policyErr(rule, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return policyErr(rule, "contains control characters")
		}
		if bidiControl(r) {
			return policyErr(rule, "contains a bidirectional override (U+202A to U+202E, U+2066 to U+2069)")
		}
	}
	return nil
}

// bidiControl reports whether r is an embedding, override or isolate
// control, which can make text read differently from what it holds
// ("Trojan Source", CVE-2021-42574).
func bidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
