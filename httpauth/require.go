package httpauth

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/apitoken/apitoken"
)

// RequireRole returns middleware, for handlers inside [Middleware.Wrap],
// that lets a request through only if its principal holds one of roles
// ([apitoken.Principal.HasRole]: for a narrowed user token, its effective
// roles); otherwise it answers 403 insufficient_scope (401 without a
// principal), written and observed as m writes and observes its own
// rejections.
func (m *Middleware) RequireRole(roles ...string) func(http.Handler) http.Handler {
	roles = slices.Clone(roles)
	err := fmt.Errorf("%w: the token holds none of the roles %q", apitoken.ErrForbidden, roles)
	return m.require(func(p *apitoken.Principal) bool { return slices.ContainsFunc(roles, p.HasRole) }, err, "")
}

// RequireAccess returns middleware, for handlers inside [Middleware.Wrap],
// that lets a request through only if its principal has at least level
// access to api ([apitoken.Principal.Access]); otherwise it answers 403
// insufficient_scope with the scope ([Scope]) in the challenge (401
// without a principal).
func (m *Middleware) RequireAccess(api string, level apitoken.Access) func(http.Handler) http.Handler {
	err := fmt.Errorf("%w: needs %s access to %q", apitoken.ErrForbidden, level, api)
	return m.require(func(p *apitoken.Principal) bool { return p.Access(api) >= level }, err, Scope(api, level))
}

// require lets through the requests whose principal passes ok, and
// rejects the others with err and scope.
func (m *Middleware) require(ok func(*apitoken.Principal) bool, err error, scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, found := PrincipalFrom(r.Context())
			if !found {
				m.reject(w, r, Outcome{ClientIP: m.ip.ClientIP(r)}, &Failure{Status: http.StatusUnauthorized, Err: ErrNoCredentials})
				return
			}
			if !ok(p) {
				out := Outcome{TokenID: p.TokenID, Hint: p.Hint, ClientIP: m.ip.ClientIP(r)}
				m.reject(w, r, out, &Failure{Status: http.StatusForbidden, Code: CodeInsufficientScope, Scope: scope, Err: err})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// reject observes and writes f.
func (m *Middleware) reject(w http.ResponseWriter, r *http.Request, out Outcome, f *Failure) {
	if m.observe != nil {
		out.Status, out.Err = f.Status, f.Err
		m.observe(r, out)
	}
	m.onError(w, r, f)
}
