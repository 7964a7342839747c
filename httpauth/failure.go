package httpauth

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// Response header names the middleware writes.
const (
	HeaderWWWAuthenticate     = "WWW-Authenticate"
	HeaderRetryAfter          = "Retry-After"
	HeaderRateLimit           = "RateLimit"        // IETF draft-ietf-httpapi-ratelimit-headers
	HeaderRateLimitPolicy     = "RateLimit-Policy" // IETF draft-ietf-httpapi-ratelimit-headers
	HeaderXRateLimitLimit     = "X-RateLimit-Limit"
	HeaderXRateLimitRemaining = "X-RateLimit-Remaining"
	HeaderXRateLimitReset     = "X-RateLimit-Reset"
)

// RFC 6750 §3.1 error codes, as a [Failure] carries them. Each is also
// the "code" of the problem body of its status ([Failure.ProblemCode]).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// The other codes of the problem bodies ([Failure.ProblemCode]), spelled
// as package adminapi spells them, so that a client reads one "code"
// member whichever of the two answered.
const (
	CodeUnauthenticated = "unauthenticated" // 401 to a request without credentials
	CodeRateLimited     = "rate_limited"    // 429, the token's limit or the client's failed authentications
	CodeUnavailable     = "unavailable"     // 503
	CodeInternal        = "internal"        // any other status
)

// Failure describes a rejected request, for [WithErrorHandler]. Status,
// Code and Scope are what the client may learn ([Failure.ProblemCode]
// names the code of the problem body); Err is the specific reason, for
// logs only.
type Failure struct {
	Status int    // 400, 401, 403, 429 or 503
	Code   string // an RFC 6750 code for 400/401/403 (empty for 401 without credentials)
	// Scope, for a 403 insufficient_scope, is the scope the request lacked,
	// "<api>:<level>" such as "devices:full" (see [Scope]); empty when the
	// token lacked something else (a role, a resource, the client address).
	Scope string
	Err   error // the specific reason; never send it to the client
	// RetryAfter is set for 429 and 503.
	RetryAfter time.Duration
	// Decision is the token's rate-limit decision behind a 429 (zero for
	// a client out of failed authentications, [ErrThrottled]).
	Decision apitoken.Decision
}

// Scope returns the RFC 6750 scope token for level access to api,
// "<api>:<level>" ("devices:read", "billing:full"), or "" if api holds a
// character a scope token may not (space, '"', '\' or a control
// character), so the challenge can always quote it safely.
func Scope(api string, level apitoken.Access) string {
	if api == "" || level == apitoken.AccessNone {
		return ""
	}
	for i := 0; i < len(api); i++ {
		// scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		if c := api[i]; c < 0x21 || c > 0x7E || c == '"' || c == '\\' {
			return ""
		}
	}
	return api + ":" + level.String()
}

// ProblemCode returns the "code" member of the problem body that
// [WriteFailure] writes for f: invalid_request (400), invalid_token (401
// with a Code), unauthenticated (401 without one: no credentials),
// insufficient_scope (403), rate_limited (429), unavailable (503), or
// internal (any other status). It depends on f.Status and on whether
// f.Code is empty, never on f.Err, so it tells the client nothing the
// challenge does not.
func (f *Failure) ProblemCode() string {
	switch f.Status {
	case http.StatusBadRequest:
		return CodeInvalidRequest
	case http.StatusUnauthorized:
		if f.Code == "" {
			return CodeUnauthenticated
		}
		return CodeInvalidToken
	case http.StatusForbidden:
		return CodeInsufficientScope
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return CodeInternal
}

// problemBody returns the RFC 9457 problem body for f: fixed per status
// and [Failure.ProblemCode], so that responses are no oracle. Its members
// are those of package adminapi's problems, in the same order.
func problemBody(f *Failure) string {
	switch f.ProblemCode() {
	case CodeInvalidRequest:
		return `{"type":"about:blank","title":"Bad Request","status":400,"detail":"The request's credentials are malformed.","code":"invalid_request"}`
	case CodeUnauthenticated:
		return `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"An API token is required.","code":"unauthenticated"}`
	case CodeInvalidToken:
		return `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"A valid API token is required.","code":"invalid_token"}`
	case CodeInsufficientScope:
		return `{"type":"about:blank","title":"Forbidden","status":403,"detail":"The API token does not allow this request.","code":"insufficient_scope"}`
	case CodeRateLimited:
		return `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"The rate limit is exhausted; retry later.","code":"rate_limited"}`
	case CodeUnavailable:
		return `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"Authentication is temporarily unavailable; retry later.","code":"unavailable"}`
	}
	return `{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"An unexpected failure.","code":"internal"}`
}

// WriteFailure returns the default rejection writer for realm: the status;
// for 400/401/403 a Bearer challenge (RFC 6750 §3: realm, then error, then
// scope for an insufficient_scope with a known [Failure.Scope], e.g.
// `Bearer realm="api", error="insufficient_scope", scope="devices:full"`);
// Retry-After (whole seconds, at least 1) for 429/503; and an RFC 9457
// problem body (application/problem+json), the same shape as package
// adminapi's, fixed per status and [Failure.ProblemCode]:
//
//	{"type":"about:blank","title":"Unauthorized","status":401,"detail":"A valid API token is required.","code":"invalid_token"}
//
// It never holds the token or f.Err. A status other than 400, 401, 403,
// 429 and 503 is written as it is with the body of a 500 (code internal).
// The realm is quoted ('"' and '\' escaped, control characters dropped).
func WriteFailure(realm string) func(http.ResponseWriter, *http.Request, *Failure) {
	challenge := `Bearer realm="` + quote(realm) + `"`
	return func(w http.ResponseWriter, _ *http.Request, f *Failure) {
		h := w.Header()
		switch f.Status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			c := challenge
			if f.Code != "" {
				c += `, error="` + quote(f.Code) + `"`
				if f.Scope != "" && f.Code == CodeInsufficientScope {
					c += `, scope="` + quote(f.Scope) + `"`
				}
			}
			h.Set(HeaderWWWAuthenticate, c)
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			h.Set(HeaderRetryAfter, strconv.FormatInt(max(1, ceilSeconds(f.RetryAfter)), 10))
		}
		h.Set("Content-Type", "application/problem+json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(problemBody(f)))
	}
}

// quote escapes s for the inside of an HTTP quoted-string, dropping
// control characters.
func quote(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r == 0x7F }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7F:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ceilSeconds rounds d up to whole seconds, at least 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// fail classifies err, tells the observer and writes the rejection; wait
// is the Retry-After of a throttled client.
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, out *Outcome, err error, wait time.Duration) {
	f := &Failure{Err: err}
	var rl *apitoken.RateLimitError
	var te *apitoken.TokenError
	if errors.As(err, &te) {
		out.TokenID, out.Hint = te.TokenID, te.Hint
	}
	switch {
	case errors.Is(err, ErrNoCredentials):
		f.Status = http.StatusUnauthorized
	case errors.Is(err, ErrBadCredentials):
		f.Status, f.Code = http.StatusBadRequest, CodeInvalidRequest
	case errors.Is(err, ErrThrottled):
		f.Status, f.RetryAfter = http.StatusTooManyRequests, wait
	case errors.Is(err, apitoken.ErrMalformed), errors.Is(err, apitoken.ErrUnknown), errors.Is(err, apitoken.ErrRevoked),
		errors.Is(err, apitoken.ErrExpired), errors.Is(err, apitoken.ErrIdle):
		f.Status, f.Code = http.StatusUnauthorized, CodeInvalidToken
	case errors.Is(err, apitoken.ErrIPNotAllowed), errors.Is(err, apitoken.ErrForbidden), errors.Is(err, ErrNoAPI):
		f.Status, f.Code = http.StatusForbidden, CodeInsufficientScope
		if te != nil && te.Access > apitoken.AccessNone {
			f.Scope = Scope(te.API, te.Access)
		}
	case errors.As(err, &rl):
		f.Status, f.RetryAfter, f.Decision = http.StatusTooManyRequests, rl.Decision.RetryAfter, rl.Decision
		m.rateLimitHeaders(w.Header(), rl.Decision, nil)
	default: // store, directory or limiter down; closed validator
		f.Status, f.RetryAfter = http.StatusServiceUnavailable, m.retryOutage
	}
	if m.observe != nil {
		out.Status, out.Err = f.Status, err
		m.observe(r, *out)
	}
	m.onError(w, r, f)
}
