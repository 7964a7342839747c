package httpauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken"
)

// Middleware authenticates requests with an [apitoken.Validator]. Use [New];
// the zero value is not usable. A Middleware is immutable once built and
// safe for concurrent use; [Middleware.Wrap] protects a handler.
type Middleware struct {
	v            *apitoken.Validator
	realm        string
	bearer       bool
	apiKeyHeader string // canonical; "" when not read
	queryParam   string // "" when not read
	extract      func(*http.Request) (string, bool)
	ip           ClientIPSource
	api          func(*http.Request) string // nil: from the ServeMux pattern
	org          func(*http.Request) string // nil: the single tenant
	resource     func(*http.Request) string
	access       func(*http.Request) apitoken.Access
	onError      func(http.ResponseWriter, *http.Request, *Failure)
	observe      func(*http.Request, Outcome)
	xRateLimit   bool
	forward      bool
	failureLimit apitoken.Limit
	throttle     *throttle // nil: off
	clock        func() time.Time
	retryOutage  time.Duration

	policies atomic.Pointer[[]policyValue] // copy on write, at most maxPolicies
}

// New returns middleware that authenticates every request with v. For each
// request it
//
//  1. extracts the token: Authorization: Bearer (scheme case-insensitive),
//     and whatever [WithAPIKeyHeader], [WithQueryParam] or [WithExtractor]
//     add; two different tokens are a 400, and so is the query parameter
//     beside another source or twice (RFC 6750 §2: one method);
//  2. finds the client address: the connection's peer, unless
//     [WithTrustedProxies] declares the proxies and the one header they set;
//  3. names the API: the first segment of the matched [http.ServeMux]
//     pattern ("/devices/{id}" → "devices"), unless [WithAPI] or
//     [WithAPIName] says; a request whose API cannot be named is denied
//     (403, [ErrNoAPI]) — the raw URL path is never read;
//  4. refuses, with a 429 and no store lookup, a client that has spent its
//     budget of failed authentications ([WithFailureLimit]; on by default);
//  5. validates the token for the request's org ([WithOrg], or the
//     Validator's single tenant), API, resource ([WithResource]) and
//     needed access ([AccessForMethod] unless [WithAccess] says);
//  6. on success calls next with the [apitoken.Principal] in the request
//     context ([PrincipalFrom]), the RateLimit headers set, and the consumed
//     credential removed from the request (unless [WithForwardCredential]).
//
// Otherwise it answers, without calling next:
//
//   - 400 invalid_request: a malformed Authorization or API-key header or
//     query parameter (not an RFC 6750 b64token: empty, non-ASCII, a
//     space, comma or quote), two different tokens in one request, or the
//     query parameter beside another source or repeated;
//   - 401 with a Bearer challenge: no token (no error code; code
//     unauthenticated in the body), or a token that is malformed, unknown,
//     revoked, expired, idle or from another org (invalid_token — all
//     byte-identical, so the response is no oracle);
//   - 403 insufficient_scope: client address, role, access or resource
//     denied, or no API name; for missing access the challenge names the
//     scope (see [Scope]);
//   - 429 rate_limited with Retry-After: the token's rate limit (with the
//     RateLimit headers, whose t equals Retry-After; see the package
//     documentation), or the client's failed authentications;
//   - 503 unavailable with Retry-After when the store, directory or limiter
//     cannot answer, or the Validator is closed.
//
// Error bodies are RFC 9457 problems of the same shape as package
// adminapi's, with the machine-readable "code" named above
// ([Failure.ProblemCode]); they never hold the token or the specific
// reason, which the observer ([WithObserver]) learns.
//
// New fails with an error that says what to add if v is nil, if v is
// multi-tenant and no [WithOrg] says where a request's org comes from, if
// no credential source is left, or if an option is invalid.
func New(v *apitoken.Validator, opts ...Option) (*Middleware, error) {
	if v == nil {
		return nil, errors.New("httpauth: New: nil Validator: build one with apitoken.NewValidator")
	}
	m := &Middleware{
		v:            v,
		realm:        "api",
		bearer:       true,
		access:       AccessForMethod,
		failureLimit: apitoken.Limit{Rate: DefaultFailureRate, Burst: DefaultFailureBurst},
		clock:        time.Now,
		retryOutage:  5 * time.Second,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, errors.New("httpauth: New: zero Option")
		}
		if err := o.apply(m); err != nil {
			return nil, fmt.Errorf("httpauth: New: %s: %w", o.name, err)
		}
	}
	if _, single := v.SingleTenant(); !single && m.org == nil {
		return nil, errors.New("httpauth: New: the Validator is multi-tenant: add httpauth.WithOrg(...) " +
			"to say where a request's org comes from, or build the Validator with apitoken.WithSingleTenant(org)")
	}
	if !m.bearer && m.apiKeyHeader == "" && m.queryParam == "" && m.extract == nil {
		return nil, errors.New("httpauth: New: WithoutBearer leaves no way to find a token: " +
			"add WithAPIKeyHeader, WithQueryParam or WithExtractor")
	}
	if m.onError == nil {
		m.onError = WriteFailure(m.realm)
	}
	if !m.failureLimit.IsZero() {
		m.throttle = newThrottle(m.failureLimit)
	}
	return m, nil
}

// Wrap returns next protected by m, in the shape of the standard
// library's middleware (func(http.Handler) http.Handler is m.Wrap). Like
// [http.ServeMux.Handle], it panics if next is nil.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	if next == nil {
		panic("httpauth: Wrap: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
}

// ClientIP returns the client address of r as m finds it (see
// [NewClientIPSource]; the peer without [WithTrustedProxies]).
func (m *Middleware) ClientIP(r *http.Request) netip.Addr { return m.ip.ClientIP(r) }

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	out := Outcome{ClientIP: m.ip.ClientIP(r), Access: m.access(r)}
	api, named := m.apiName(r)
	out.API = api
	token, from, err := m.credentials(r)
	switch {
	case err != nil:
	case !named:
		err = ErrNoAPI
	case m.throttle != nil:
		if wait := m.throttle.wait(out.ClientIP, m.clock); wait > 0 {
			m.fail(w, r, &out, ErrThrottled, wait)
			return
		}
	}
	if err != nil {
		m.fail(w, r, &out, err, 0)
		return
	}
	var org string
	if m.org != nil {
		org = m.org(r)
	}
	var resource string
	if m.resource != nil {
		resource = m.resource(r)
	}
	a := &admitted{Context: r.Context()}
	err = m.v.ValidateInto(a.Context, token, apitoken.Request{
		IP: out.ClientIP, Org: org, API: out.API, Access: out.Access, Resource: resource,
	}, &a.p)
	if err != nil {
		if m.throttle != nil && failedAuthentication(err) {
			m.throttle.fail(out.ClientIP, m.clock())
		}
		m.fail(w, r, &out, err, 0)
		return
	}
	p := &a.p
	if p.Decision.Limit.Rate > 0 {
		m.rateLimitHeaders(w.Header(), p.Decision, a.rateLimit[:])
	}
	if m.observe != nil {
		out.Principal, out.TokenID, out.Hint = p, p.TokenID, p.Hint
		m.observe(r, out)
	}
	r2 := r.WithContext(a)
	if !m.forward {
		m.withoutCredentials(r, r2, from)
	}
	next.ServeHTTP(w, r2)
}

// failedAuthentication reports whether err is a failed authentication,
// which the throttle counts: a token that is malformed, unknown (or of
// another org), revoked, expired or idle — the 401 invalid_token answers.
// Requests without a token, malformed headers (400) and a genuine token's
// denials (403, 429) do not count.
func failedAuthentication(err error) bool {
	return errors.Is(err, apitoken.ErrMalformed) || errors.Is(err, apitoken.ErrUnknown) ||
		errors.Is(err, apitoken.ErrRevoked) || errors.Is(err, apitoken.ErrExpired) ||
		errors.Is(err, apitoken.ErrIdle)
}

// admitted is what the middleware allocates for a request it lets through,
// as one object: the handler's context, which carries the principal as
// [WithPrincipal] would, the principal ([apitoken.Validator.ValidateInto]
// writes it), and the RateLimit header's value slice. One allocation
// instead of three costs less on the hot path and leaves the collector
// less to do.
type admitted struct {
	context.Context
	p         apitoken.Principal
	rateLimit [1]string
}

// Value returns the principal for the key [PrincipalFrom] asks with, and
// asks the parent context otherwise.
func (a *admitted) Value(key any) any {
	if key == (principalKey{}) {
		return &a.p
	}
	return a.Context.Value(key)
}

// String names the context as context.WithValue's does, without the
// principal's fields.
func (a *admitted) String() string {
	parent := "context"
	if s, ok := a.Context.(fmt.Stringer); ok {
		parent = s.String()
	}
	return parent + ".WithValue(apitoken.Principal)"
}

type principalKey struct{}

// PrincipalFrom returns the principal the middleware put in ctx (or
// [WithPrincipal] did). Treat it as read-only.
func PrincipalFrom(ctx context.Context) (*apitoken.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*apitoken.Principal)
	return p, ok && p != nil
}

// WithPrincipal returns a copy of ctx carrying p, as the middleware does
// (useful in tests of handlers).
func WithPrincipal(ctx context.Context, p *apitoken.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
