package apitoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Header names the middleware reads or writes.
const (
	HeaderAuthorization       = "Authorization"
	HeaderWWWAuthenticate     = "WWW-Authenticate"
	HeaderRetryAfter          = "Retry-After"
	HeaderRateLimit           = "RateLimit"        // IETF draft-ietf-httpapi-ratelimit-headers
	HeaderRateLimitPolicy     = "RateLimit-Policy" // IETF draft-ietf-httpapi-ratelimit-headers
	HeaderXRateLimitLimit     = "X-RateLimit-Limit"
	HeaderXRateLimitRemaining = "X-RateLimit-Remaining"
	HeaderXRateLimitReset     = "X-RateLimit-Reset"
	HeaderForwarded           = "Forwarded"
	HeaderXForwardedFor       = "X-Forwarded-For"
	HeaderXRealIP             = "X-Real-IP"
	// DefaultAPIKeyHeader is the header WithAPIKeyHeader("") reads.
	DefaultAPIKeyHeader = "X-API-Key"
)

// RFC 6750 error codes, as a [Failure] carries them.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// A MiddlewareOption configures [Middleware].
type MiddlewareOption func(*middleware)

type middleware struct {
	v            *Validator
	realm        string
	bearer       bool
	apiKeyHeader string
	queryParam   string
	extract      func(*http.Request) (string, bool)
	trusted      []netip.Prefix
	api          func(*http.Request) string
	org          func(*http.Request) string
	resource     func(*http.Request) string
	access       func(*http.Request) Access
	onError      func(http.ResponseWriter, *http.Request, *Failure)
	observe      func(*http.Request, Outcome)
	xRateLimit   bool
	retryOutage  time.Duration

	policies atomic.Pointer[[]policyValue] // copy on write, at most maxPolicies
}

// policyValue is a cached RateLimit-Policy header value: a one-element slice,
// read-only, shared by every response with that limit.
type policyValue struct {
	limit Limit
	value []string
}

// maxPolicies bounds the cache of RateLimit-Policy values: a policy has a
// few limits, but per-token overrides can make many, whose values are then
// formatted per response.
const maxPolicies = 16

// Failure describes a rejected request, for [WithErrorHandler]. Status and
// Code are what the client may learn; Err is the specific reason, for logs
// only.
type Failure struct {
	Status int    // 400, 401, 403, 429 or 503
	Code   string // an RFC 6750 code for 400/401/403 (empty for 401 without credentials)
	Err    error  // the specific reason; never send it to the client
	// RetryAfter is set for 429 and 503.
	RetryAfter time.Duration
	// RateLimit is the decision behind a 429.
	RateLimit Decision
}

// Outcome is one decision of the middleware, for [WithObserver].
type Outcome struct {
	Status    int        // 0 when the request was let through to the handler
	Err       error      // the specific reason of a rejection
	Principal *Principal // set when let through
	ClientIP  netip.Addr
	API       string
	Access    Access
}

// Middleware returns net/http middleware that authenticates every request
// with v: it extracts the token (Authorization: Bearer by default), resolves
// the client address (the connection's peer unless it is a trusted proxy),
// validates the token for the request's API, org, resource and needed access
// (read for GET, HEAD and OPTIONS, full otherwise), and on success calls next
// with the [Principal] in the request context ([PrincipalFrom]) and the
// RateLimit headers set. Otherwise it answers, without calling next:
//
//   - 400 invalid_request: a malformed Authorization header, or two
//     different tokens in one request;
//   - 401 with a Bearer challenge: no token (no error code), or a token that
//     is malformed, unknown, revoked, expired, idle or from another org
//     (invalid_token — all byte-identical, so the response is no oracle);
//   - 403 insufficient_scope: client address, role, access or resource
//     denied;
//   - 429 with Retry-After and RateLimit headers;
//   - 503 with Retry-After when the store, directory or limiter cannot answer.
//
// Error bodies are RFC 9457 problem details that never hold the token or the
// specific reason. The returned middleware is safe for concurrent use.
func Middleware(v *Validator, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{
		v:           v,
		realm:       "api",
		bearer:      true,
		api:         apiFromPattern,
		org:         func(*http.Request) string { return "" },
		resource:    func(*http.Request) string { return "" },
		access:      AccessForMethod,
		onError:     WriteFailure("api"),
		retryOutage: 5 * time.Second,
	}
	for _, o := range opts {
		if o != nil {
			o(m)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
	}
}

// WithRealm sets the realm of the Bearer challenge (default "api").
func WithRealm(realm string) MiddlewareOption {
	return func(m *middleware) {
		m.realm = realm
		m.onError = WriteFailure(realm)
	}
}

// WithAPIKeyHeader also reads the token from the named header (e.g.
// "X-API-Key"; empty means [DefaultAPIKeyHeader]).
func WithAPIKeyHeader(name string) MiddlewareOption {
	return func(m *middleware) {
		if name == "" {
			name = DefaultAPIKeyHeader
		}
		m.apiKeyHeader = http.CanonicalHeaderKey(name)
	}
}

// WithQueryParam also reads the token from the named query parameter. Off by
// default: URLs end up in logs, proxies and browser history.
func WithQueryParam(name string) MiddlewareOption {
	return func(m *middleware) { m.queryParam = name }
}

// WithExtractor also reads the token with f, which reports whether the
// request carries one.
func WithExtractor(f func(*http.Request) (token string, ok bool)) MiddlewareOption {
	return func(m *middleware) { m.extract = f }
}

// WithoutBearer stops reading the Authorization header (use with another
// extractor).
func WithoutBearer() MiddlewareOption {
	return func(m *middleware) { m.bearer = false }
}

// WithTrustedProxies makes the middleware believe Forwarded,
// X-Forwarded-For and X-Real-IP when the connection's peer is in one of the
// prefixes; see [ClientIP]. The prefixes are copied.
func WithTrustedProxies(prefixes ...netip.Prefix) MiddlewareOption {
	return func(m *middleware) { m.trusted = append([]netip.Prefix(nil), prefixes...) }
}

// WithAPI sets how the API name of a request is found. The default takes the
// first path segment of the matched ServeMux pattern (or of the URL path):
// "/devices/{id}" → "devices".
func WithAPI(f func(*http.Request) string) MiddlewareOption {
	return func(m *middleware) { m.api = f }
}

// WithAPIName fixes the API name, for a middleware that wraps one API.
func WithAPIName(name string) MiddlewareOption {
	return WithAPI(func(*http.Request) string { return name })
}

// WithOrg sets how the org of a request is found, e.g.
// func(r) string { return r.PathValue("org") }. Without it the org is ""
// (see [Request.Org]).
func WithOrg(f func(*http.Request) string) MiddlewareOption {
	return func(m *middleware) { m.org = f }
}

// WithResource sets how the resource of a request is found (e.g. a site ID
// from the path). Without it requests name no resource.
func WithResource(f func(*http.Request) string) MiddlewareOption {
	return func(m *middleware) { m.resource = f }
}

// WithAccess sets the access level a request needs; the default is
// [AccessForMethod].
func WithAccess(f func(*http.Request) Access) MiddlewareOption {
	return func(m *middleware) { m.access = f }
}

// WithErrorHandler replaces how rejections are written (the default is
// [WriteFailure] with the realm).
func WithErrorHandler(f func(http.ResponseWriter, *http.Request, *Failure)) MiddlewareOption {
	return func(m *middleware) { m.onError = f }
}

// WithObserver calls f with every decision, after it is made and before the
// response is written — for logs and metrics. f must be safe for concurrent
// use. See [SlogObserver].
func WithObserver(f func(*http.Request, Outcome)) MiddlewareOption {
	return func(m *middleware) { m.observe = f }
}

// WithXRateLimitHeaders also sets X-RateLimit-Limit, -Remaining and -Reset.
func WithXRateLimitHeaders() MiddlewareOption {
	return func(m *middleware) { m.xRateLimit = true }
}

// AccessForMethod is the default access rule: GET, HEAD and OPTIONS need
// read access, other methods full access.
func AccessForMethod(r *http.Request) Access {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return AccessRead
	}
	return AccessFull
}

// apiFromPattern returns the first path segment of the matched pattern, or
// of the URL path.
func apiFromPattern(r *http.Request) string {
	p := r.Pattern
	if p == "" {
		p = r.URL.Path
	} else {
		if i := strings.IndexByte(p, ' '); i >= 0 { // "GET /x"
			p = strings.TrimLeft(p[i+1:], " \t")
		}
		if i := strings.IndexByte(p, '/'); i > 0 { // "host/x"
			p = p[i:]
		}
	}
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	if strings.HasPrefix(p, "{") {
		return ""
	}
	return p
}

type principalKey struct{}

// PrincipalFrom returns the Principal the middleware put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// WithPrincipal returns a copy of ctx carrying p, as the middleware does
// (useful in tests of handlers).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

var errNoCredentials = errors.New("apitoken: no credentials")
var errBadRequest = errors.New("apitoken: malformed credentials")

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	out := Outcome{ClientIP: ClientIP(r, m.trusted...), API: m.api(r), Access: m.access(r)}
	token, err := m.token(r)
	if err != nil {
		m.fail(w, r, out, err)
		return
	}
	if m.v == nil {
		m.fail(w, r, out, ErrClosed)
		return
	}
	a := &admitted{Context: r.Context()}
	p, err := m.v.validate(a.Context, token, Request{
		IP: out.ClientIP, Org: m.org(r), API: out.API, Access: out.Access, Resource: m.resource(r),
	}, &a.p)
	if err != nil {
		m.fail(w, r, out, err)
		return
	}
	if p.RateLimit.Limit.Rate > 0 {
		m.rateLimitHeaders(w.Header(), p.RateLimit, time.Time{}, a.rateLimit[:])
	}
	if m.observe != nil {
		out.Principal = p
		m.observe(r, out)
	}
	next.ServeHTTP(w, r.WithContext(a))
}

// admitted is what the middleware allocates for a request it lets through,
// as one object: the handler's context, which carries the principal as
// [WithPrincipal] would, the principal, and the RateLimit header's value
// slice. One allocation instead of three costs less on the hot path and
// leaves the collector less to do.
type admitted struct {
	context.Context
	p         Principal
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

// token returns the one token the request carries.
func (m *middleware) token(r *http.Request) (string, error) {
	var found string
	add := func(t string) error {
		if found != "" && t != found {
			return errBadRequest // two different tokens
		}
		found = t
		return nil
	}
	if m.bearer {
		for _, h := range r.Header[HeaderAuthorization] { // canonical: no re-canonicalizing
			t, ok, err := bearerToken(h)
			if err != nil {
				return "", err
			}
			if ok {
				if err := add(t); err != nil {
					return "", err
				}
			}
		}
	}
	if m.apiKeyHeader != "" {
		for _, h := range r.Header[m.apiKeyHeader] {
			t := strings.Trim(h, " \t")
			if t == "" || strings.ContainsAny(t, " \t,") {
				return "", errBadRequest
			}
			if err := add(t); err != nil {
				return "", err
			}
		}
	}
	if m.queryParam != "" {
		if vs, ok := r.URL.Query()[m.queryParam]; ok {
			for _, t := range vs {
				if t == "" {
					return "", errBadRequest
				}
				if err := add(t); err != nil {
					return "", err
				}
			}
		}
	}
	if m.extract != nil {
		if t, ok := m.extract(r); ok {
			if err := add(t); err != nil {
				return "", err
			}
		}
	}
	if found == "" {
		return "", errNoCredentials
	}
	return found, nil
}

// bearerToken parses one Authorization header value. It reports ok=false for
// another scheme, and an error for a Bearer header without a well-formed
// credential. The scheme is case-insensitive (RFC 7235).
func bearerToken(h string) (token string, ok bool, err error) {
	h = strings.Trim(h, " \t")
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" || strings.ContainsAny(rest, " \t,") {
		return "", false, errBadRequest
	}
	return rest, true, nil
}

// fail classifies err and writes the rejection.
func (m *middleware) fail(w http.ResponseWriter, r *http.Request, out Outcome, err error) {
	f := &Failure{Err: err}
	var rl *RateLimitError
	switch {
	case errors.Is(err, errNoCredentials):
		f.Status = http.StatusUnauthorized
	case errors.Is(err, errBadRequest):
		f.Status, f.Code = http.StatusBadRequest, CodeInvalidRequest
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknown), errors.Is(err, ErrRevoked),
		errors.Is(err, ErrExpired), errors.Is(err, ErrIdle):
		f.Status, f.Code = http.StatusUnauthorized, CodeInvalidToken
	case errors.Is(err, ErrIPNotAllowed), errors.Is(err, ErrForbidden):
		f.Status, f.Code = http.StatusForbidden, CodeInsufficientScope
	case errors.As(err, &rl):
		f.Status, f.RetryAfter, f.RateLimit = http.StatusTooManyRequests, rl.Decision.RetryAfter, rl.Decision
		m.rateLimitHeaders(w.Header(), rl.Decision, time.Time{}, nil)
	default: // store, directory or limiter down; closed validator
		f.Status, f.RetryAfter = http.StatusServiceUnavailable, m.retryOutage
	}
	if m.observe != nil {
		out.Status, out.Err = f.Status, err
		m.observe(r, out)
	}
	m.onError(w, r, f)
}

// rateLimitHeaders sets the RateLimit headers of d, decided at now (zero:
// unknown), in h. The RateLimit value goes into vals[0] when vals has room,
// else into a new slice.
func (m *middleware) rateLimitHeaders(h http.Header, d Decision, now time.Time, vals []string) {
	switch {
	case !now.IsZero():
	case m.v != nil:
		now = m.v.cfg.clock()
	default:
		now = time.Now()
	}
	reset := ceilSeconds(d.ResetAt.Sub(now))
	var buf [64]byte
	b := strconv.AppendInt(append(buf[:0], `"default";r=`...), int64(d.Remaining), 10)
	if len(vals) == 0 {
		vals = make([]string, 1)
	}
	vals[0] = string(strconv.AppendInt(append(b, ";t="...), reset, 10))
	h[canonicalRateLimitPolicy] = m.policy(d.Limit)
	h[canonicalRateLimit] = vals[0:1:1]
	if m.xRateLimit {
		x := []string{strconv.Itoa(d.Limit.Burst), strconv.Itoa(d.Remaining), strconv.FormatInt(reset, 10)}
		h[canonicalXRateLimitLimit] = x[0:1:1]
		h[canonicalXRateLimitRemaining] = x[1:2:2]
		h[canonicalXRateLimitReset] = x[2:3:3]
	}
}

// policy returns the RateLimit-Policy header value of l, as a one-element
// slice shared by every response with that limit (its capacity is 1, so an
// Add to the header copies it).
func (m *middleware) policy(l Limit) []string {
	var cached []policyValue
	old := m.policies.Load()
	if old != nil {
		cached = *old
	}
	for _, p := range cached {
		if p.limit == l {
			return p.value
		}
	}
	window := ceilSeconds(time.Duration(float64(l.Burst) / float64(l.Rate) * float64(time.Second)))
	b := strconv.AppendInt([]byte(`"default";q=`), int64(l.Burst), 10)
	v := []string{string(strconv.AppendInt(append(b, ";w="...), window, 10))}
	if len(cached) < maxPolicies {
		list := append([]policyValue{{l, v}}, cached...)
		m.policies.CompareAndSwap(old, &list) // losing a race only costs a later format
	}
	return v
}

// Canonical forms of the rate-limit header names, for direct map writes.
var (
	canonicalRateLimit           = http.CanonicalHeaderKey(HeaderRateLimit)
	canonicalRateLimitPolicy     = http.CanonicalHeaderKey(HeaderRateLimitPolicy)
	canonicalXRateLimitLimit     = http.CanonicalHeaderKey(HeaderXRateLimitLimit)
	canonicalXRateLimitRemaining = http.CanonicalHeaderKey(HeaderXRateLimitRemaining)
	canonicalXRateLimitReset     = http.CanonicalHeaderKey(HeaderXRateLimitReset)
)

// ceilSeconds rounds d up to whole seconds, at least 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// problem bodies, fixed per status so that responses are no oracle.
var problems = map[int]string{
	http.StatusBadRequest:          `{"type":"about:blank","title":"Bad Request","status":400,"detail":"The request's credentials are malformed."}`,
	http.StatusUnauthorized:        `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"A valid API token is required."}`,
	http.StatusForbidden:           `{"type":"about:blank","title":"Forbidden","status":403,"detail":"The API token does not allow this request."}`,
	http.StatusTooManyRequests:     `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"The rate limit is exhausted; retry later."}`,
	http.StatusServiceUnavailable:  `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"Authentication is temporarily unavailable; retry later."}`,
	http.StatusInternalServerError: `{"type":"about:blank","title":"Internal Server Error","status":500}`,
}

// WriteFailure returns the default rejection writer for realm: the status,
// a Bearer challenge (RFC 6750) for 400/401/403, Retry-After (whole seconds)
// for 429/503, and a fixed RFC 9457 problem body per status that never holds
// the token or f.Err.
func WriteFailure(realm string) func(http.ResponseWriter, *http.Request, *Failure) {
	challenge := `Bearer realm="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(realm) + `"`
	return func(w http.ResponseWriter, _ *http.Request, f *Failure) {
		h := w.Header()
		switch f.Status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			if f.Code == "" {
				h.Set(HeaderWWWAuthenticate, challenge)
			} else {
				h.Set(HeaderWWWAuthenticate, challenge+`, error="`+f.Code+`"`)
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			h.Set(HeaderRetryAfter, strconv.FormatInt(max(1, ceilSeconds(f.RetryAfter)), 10))
		}
		body, ok := problems[f.Status]
		if !ok {
			body = problems[http.StatusInternalServerError]
		}
		h.Set("Content-Type", "application/problem+json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(body))
	}
}

// RequireRole returns middleware, for use inside [Middleware], that lets a
// request through only if its principal holds one of roles; otherwise it
// answers 403 insufficient_scope (401 without a principal).
func RequireRole(roles ...string) func(http.Handler) http.Handler {
	roles = append([]string(nil), roles...)
	return require(func(p *Principal) bool {
		for _, r := range roles {
			if p.HasRole(r) {
				return true
			}
		}
		return false
	})
}

// RequireAccess returns middleware, for use inside [Middleware], that lets a
// request through only if its principal has at least level access to api;
// otherwise it answers 403 insufficient_scope (401 without a principal).
func RequireAccess(api string, level Access) func(http.Handler) http.Handler {
	return require(func(p *Principal) bool { return p.Access(api) >= level })
}

func require(ok func(*Principal) bool) func(http.Handler) http.Handler {
	write := WriteFailure("api")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, found := PrincipalFrom(r.Context())
			switch {
			case !found:
				write(w, r, &Failure{Status: http.StatusUnauthorized, Err: errNoCredentials})
			case !ok(p):
				write(w, r, &Failure{Status: http.StatusForbidden, Code: CodeInsufficientScope, Err: ErrForbidden})
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// SlogObserver returns a [WithObserver] hook that logs every decision to l:
// rejections at Warn (503 at Error) with the reason, successes at Debug with
// the token ID. It never logs a token.
func SlogObserver(l *slog.Logger) func(*http.Request, Outcome) {
	return func(r *http.Request, o Outcome) {
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("api", o.API),
			slog.String("client_ip", o.ClientIP.String()),
		}
		if o.Principal != nil {
			attrs = append(attrs, slog.String("token_id", o.Principal.TokenID), slog.String("token", o.Principal.Hint))
			l.LogAttrs(r.Context(), slog.LevelDebug, "apitoken: request allowed", attrs...)
			return
		}
		level := slog.LevelWarn
		if o.Status >= 500 {
			level = slog.LevelError
		}
		attrs = append(attrs, slog.Int("status", o.Status), slog.String("reason", o.Err.Error()))
		l.LogAttrs(r.Context(), level, "apitoken: request rejected", attrs...)
	}
}

// ClientIP returns the client address of r: the connection's peer
// (RemoteAddr), unless the peer is in trusted, in which case it walks the
// forwarding chain (Forwarded, else X-Forwarded-For, else X-Real-IP) from
// the right and returns the first address not in trusted (or the left-most
// one if all are). IPv4-mapped IPv6 addresses are unmapped. A garbled entry
// where an address is needed yields the zero Addr, which no IP filter
// allows. With no trusted prefixes, headers are never read.
func ClientIP(r *http.Request, trusted ...netip.Prefix) netip.Addr {
	peer := parseHostPort(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	var chain []netip.Addr
	switch {
	case len(r.Header.Values(HeaderForwarded)) > 0:
		chain = forwardedFor(r.Header.Values(HeaderForwarded))
	case len(r.Header.Values(HeaderXForwardedFor)) > 0:
		for _, v := range r.Header.Values(HeaderXForwardedFor) {
			for part := range strings.SplitSeq(v, ",") {
				chain = append(chain, parseHostPort(strings.Trim(part, " \t")))
			}
		}
	case r.Header.Get(HeaderXRealIP) != "":
		chain = []netip.Addr{parseHostPort(strings.Trim(r.Header.Get(HeaderXRealIP), " \t"))}
	default:
		return peer
	}
	for i := len(chain) - 1; i >= 0; i-- {
		a := chain[i]
		if !a.IsValid() || !inPrefixes(a, trusted) {
			return a
		}
	}
	return chain[0]
}

// forwardedFor extracts the for= addresses of RFC 7239 Forwarded headers.
func forwardedFor(values []string) []netip.Addr {
	var chain []netip.Addr
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			var addr netip.Addr
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.Trim(pair, " \t"), "=")
				if ok && strings.EqualFold(k, "for") {
					addr = parseHostPort(strings.Trim(val, `"`))
				}
			}
			chain = append(chain, addr)
		}
	}
	return chain
}

// parseHostPort parses "addr", "addr:port", "[v6]" or "[v6]:port", and
// unmaps IPv4-mapped addresses; it returns the zero Addr for anything else.
func parseHostPort(s string) netip.Addr {
	if len(s) > 64 {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
