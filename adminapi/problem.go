package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/apitoken/apitoken"
)

// problem is an RFC 9457 problem body. Code is a machine-readable reason
// (see the package doc); Rule and Field are set for policy violations and
// bad fields.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
	Rule   string `json:"rule,omitempty"`
	Field  string `json:"field,omitempty"`
}

func writeProblem(w http.ResponseWriter, p *problem) {
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	b, _ := json.Marshal(p) // a flat struct of strings and an int: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

func badRequest(field, detail string) *problem {
	return &problem{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Detail: detail}
}

// issuerProblem maps an error of the Issuer to a problem. field, when the
// caller knows it, names the request field a policy rule concerns. ifMatch
// says the client sent If-Match, so a version conflict is a failed
// precondition (412) rather than a concurrent write (409).
func issuerProblem(err error, ifMatch bool) *problem {
	var pe *apitoken.PolicyError
	switch {
	case errors.As(err, &pe):
		return &problem{Status: http.StatusUnprocessableEntity, Code: "policy", Rule: pe.Rule,
			Field: PolicyField(pe), Detail: pe.Detail}
	case errors.Is(err, apitoken.ErrNotFound):
		return notFound()
	case errors.Is(err, apitoken.ErrExpired):
		return &problem{Status: http.StatusConflict, Code: "expired",
			Detail: "The token has expired and can no longer be changed: delete it and create a new one."}
	case errors.Is(err, apitoken.ErrRevoked):
		return &problem{Status: http.StatusConflict, Code: "revoked",
			Detail: "The token is revoked and can no longer be changed: delete it and create a new one."}
	case errors.Is(err, apitoken.ErrNotRecoverable):
		return &problem{Status: http.StatusConflict, Code: "not_recoverable",
			Detail: "The token's key was not stored in recoverable form; regenerate it for a new key."}
	case errors.Is(err, apitoken.ErrConflict) && ifMatch:
		return &problem{Status: http.StatusPreconditionFailed, Code: "precondition_failed",
			Detail: "The token has changed since the version in If-Match: read it again."}
	case errors.Is(err, apitoken.ErrConflict):
		return &problem{Status: http.StatusConflict, Code: "conflict",
			Detail: "The token was changed concurrently: retry."}
	case errors.Is(err, apitoken.ErrBadCursor):
		return badRequest("cursor", "The cursor is not one this API returned.")
	case errors.Is(err, apitoken.ErrStoreUnavailable):
		return &problem{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Detail: "The token store is temporarily unavailable; retry later."}
	}
	return &problem{Status: http.StatusInternalServerError, Code: "internal"}
}

func notFound() *problem {
	return &problem{Status: http.StatusNotFound, Code: "not_found", Detail: "No such token in this scope."}
}

// PolicyField names the request field a policy violation concerns, as this
// API's bodies spell it ("name", "description", "roles", "grants",
// "resources", "metadata", "lifetime", "ip_filter", "ip_filter.prefixes",
// "rate_limit", "grace"), or "" when no one field is to blame (for
// example MaxTokensPerOwner). It is the "field" of a policy problem, for a
// UI that points at the field: package adminui uses it too.
func PolicyField(pe *apitoken.PolicyError) string {
	switch pe.Rule {
	case "Name":
		return "name"
	case "Description":
		return "description"
	case "Roles", "DefaultRoles":
		return "roles"
	case "Grants":
		return "grants"
	case "Resources":
		return "resources"
	case "Metadata":
		return "metadata"
	case "Lifetime", "AllowedLifetimes", "MaxLifetime", "RequireExpiry":
		return "lifetime"
	case "IPFilter", "IPFilters", "AllowInlineIPFilter", "RequireIPFilter":
		return "ip_filter"
	case "IPPrefixes":
		return "ip_filter.prefixes"
	case "RateLimit", "MaxRateLimit":
		return "rate_limit"
	case "Grace", "MaxGrace":
		return "grace"
	case "NoEscalation":
		return strings.ToLower(pe.Field) // Roles, Grants or Resources
	}
	return ""
}
