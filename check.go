package apitoken

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// check validates every field of t against the policy, and t's privileges
// against by's when by is set. It does not check the lifetime.
func (is *Issuer) check(t *Token, by *Principal) error {
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
		if k == "" || checkText("Metadata", k, MaxMetadataLen) != nil || !utf8.ValidString(v) || len(v) > MaxMetadataLen {
			return policyErr("Metadata", "keys must be non-empty printable text; keys and values at most 1024 bytes of UTF-8")
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
	if by != nil {
		return is.checkEscalation(t, by)
	}
	return nil
}

// checkEscalation fails unless every role, access level and resource t holds
// is also held by p.
func (is *Issuer) checkEscalation(t *Token, p *Principal) error {
	for _, r := range t.Roles {
		if !p.HasRole(r) {
			return &PolicyError{Rule: "NoEscalation", Field: "Roles", Detail: fmt.Sprintf("issuer lacks role %q", r)}
		}
	}
	for _, api := range is.pol.apis(t.Roles, t.Grants) {
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
	}
	return nil
}
