package httpauth

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// An Option configures [New]. Build it with one of the WithX functions; an
// invalid one makes New fail with an error naming it.
type Option struct {
	name  string
	apply func(*Middleware) error
}

func option(name string, apply func(*Middleware) error) Option { return Option{name, apply} }

// WithOrg sets how the org of a request is found, e.g.
// func(r *http.Request) string { return r.PathValue("org") }. A
// multi-tenant Validator needs it (New fails without it); on a
// single-tenant one ([apitoken.WithSingleTenant]) an empty org means the
// tenant. On a multi-tenant Validator a request whose org is "" is one no
// org token works in (401, as for a token of another org).
func WithOrg(f func(*http.Request) string) Option {
	return option("WithOrg", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.org = f
		return nil
	})
}

// WithTrustedProxies declares the host's proxies: the one header they set
// (X-Forwarded-For, Forwarded, X-Real-IP or another single-IP header such
// as CF-Connecting-IP) and their prefixes. The header is read only when the
// connection's peer is in prefixes, and no other forwarding header is ever
// read; see [NewClientIPSource] for the rules. Without this option the
// client address is the peer's.
func WithTrustedProxies(header string, prefixes ...netip.Prefix) Option {
	return option("WithTrustedProxies", func(m *Middleware) error {
		s, err := NewClientIPSource(header, prefixes...)
		if err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "httpauth: "))
		}
		m.ip = *s
		return nil
	})
}

// WithAPI sets how the API name of a request is found, for a host whose
// API names are not the first segment of the ServeMux pattern, or that
// routes with another router, where r.Pattern is empty. With chi, for
// example, name it from chi.RouteContext(r.Context()).RoutePattern(); with
// gorilla/mux, from mux.CurrentRoute(r).GetPathTemplate(); or wrap each
// API's subrouter in its own Middleware with [WithAPIName]. Read the name
// from the matched route, never from r.URL.Path: "//billing", "/./billing"
// or "/%2Fbilling" must not name another API than "/billing" does. A
// request for which f returns "", ".", ".." or a name with '{' or '}' is
// denied (403, [ErrNoAPI]).
func WithAPI(f func(*http.Request) string) Option {
	return option("WithAPI", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.api = f
		return nil
	})
}

// WithAPIName fixes the API name, for a Middleware that wraps one API.
func WithAPIName(name string) Option {
	return option("WithAPIName", func(m *Middleware) error {
		if !validAPIName(name) {
			return fmt.Errorf("invalid API name %q (empty, a dot segment or a wildcard)", name)
		}
		m.api = func(*http.Request) string { return name }
		return nil
	})
}

// WithResource sets how the resource of a request is found (e.g. a site ID
// from the path). Without it requests name no resource.
func WithResource(f func(*http.Request) string) Option {
	return option("WithResource", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.resource = f
		return nil
	})
}

// WithAccess sets the access level a request needs; the default is
// [AccessForMethod]. [apitoken.AccessNone] skips the access check.
func WithAccess(f func(*http.Request) apitoken.Access) Option {
	return option("WithAccess", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.access = f
		return nil
	})
}

// WithAPIKeyHeader also reads the token from the named header (e.g.
// "X-API-Key"; empty means [DefaultAPIKeyHeader]).
func WithAPIKeyHeader(name string) Option {
	return option("WithAPIKeyHeader", func(m *Middleware) error {
		if name == "" {
			name = DefaultAPIKeyHeader
		}
		if !validFieldName(name) {
			return fmt.Errorf("header %q is not a valid field name", name)
		}
		if name = http.CanonicalHeaderKey(name); name == headerAuthorization {
			return errors.New("the Authorization header is read as Bearer already")
		}
		m.apiKeyHeader = name
		return nil
	})
}

// WithQueryParam also reads the token from the named query parameter
// (empty means [DefaultQueryParam], "access_token"). Off by default: URLs
// end up in logs, proxies and browser history. As RFC 6750 §2 asks, a
// request uses one method: the parameter beside a header token (even the
// same one) or given twice is a 400 invalid_request.
func WithQueryParam(name string) Option {
	return option("WithQueryParam", func(m *Middleware) error {
		if name == "" {
			name = DefaultQueryParam
		}
		m.queryParam = name
		return nil
	})
}

// WithExtractor also reads the token with f, which reports whether the
// request carries one (from a cookie, say). The middleware cannot remove
// what f read from the request it passes on.
func WithExtractor(f func(*http.Request) (token string, ok bool)) Option {
	return option("WithExtractor", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.extract = f
		return nil
	})
}

// WithoutBearer stops reading the Authorization header (use with another
// source of tokens).
func WithoutBearer() Option {
	return option("WithoutBearer", func(m *Middleware) error { m.bearer = false; return nil })
}

// WithForwardCredential passes the request on with its credential: by
// default the middleware removes the Authorization Bearer lines, the
// API-key header or the query parameter it took the token from, so the
// handler, its access logs, panic dumps and proxies downstream never see
// it. Use it only for a handler that must forward the token.
func WithForwardCredential() Option {
	return option("WithForwardCredential", func(m *Middleware) error { m.forward = true; return nil })
}

// WithFailureLimit sets each client's budget of failed authentications:
// l.Burst at once, refilled at l.Rate (the default is [DefaultFailureBurst]
// at [DefaultFailureRate]: 100, then one a second). A failed
// authentication is a 401 invalid_token answer: a token that is malformed,
// unknown, of another org, revoked, expired or idle. Requests without a
// token, malformed headers (400, no store lookup) and a genuine token's
// 403 and 429 do not count. A client that has spent its budget is
// answered 429 with Retry-After, without a store lookup, whatever token it
// presents, until the budget refills; so a flood of forged tokens from one
// client costs at most Burst store lookups (plus the rate, and the requests
// it has in flight at once), and other clients are unaffected. A client is
// its address, an IPv6 client its /64; requests whose address is unknown
// share one budget. At most [MaxFailureClients] clients are tracked. The
// zero Limit turns the budget off.
func WithFailureLimit(l apitoken.Limit) Option {
	return option("WithFailureLimit", func(m *Middleware) error {
		if !l.IsZero() && (l.Rate <= 0 || math.IsNaN(float64(l.Rate)) || math.IsInf(float64(l.Rate), 0) || l.Burst < 1) {
			return fmt.Errorf("invalid limit %+v: want a positive rate and a burst of at least 1, or the zero Limit for none", l)
		}
		m.failureLimit = l
		return nil
	})
}

// WithClock sets the clock of the failed-authentication budget (default
// time.Now), for tests.
func WithClock(now func() time.Time) Option {
	return option("WithClock", func(m *Middleware) error {
		if now == nil {
			return errors.New("nil func")
		}
		m.clock = now
		return nil
	})
}

// WithRealm sets the realm of the Bearer challenge (default "api").
func WithRealm(realm string) Option {
	return option("WithRealm", func(m *Middleware) error {
		if strings.ContainsFunc(realm, func(r rune) bool { return r < 0x20 || r == 0x7F }) {
			return fmt.Errorf("realm %q holds a control character", realm)
		}
		m.realm = realm
		return nil
	})
}

// WithErrorHandler replaces how rejections are written (the default is
// [WriteFailure] with the realm). f must not send f.Err to the client.
func WithErrorHandler(f func(http.ResponseWriter, *http.Request, *Failure)) Option {
	return option("WithErrorHandler", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.onError = f
		return nil
	})
}

// WithObserver calls f with every decision, after it is made and before the
// response is written — for logs and metrics. f must be safe for concurrent
// use. See [SlogObserver].
func WithObserver(f func(*http.Request, Outcome)) Option {
	return option("WithObserver", func(m *Middleware) error {
		if f == nil {
			return errors.New("nil func")
		}
		m.observe = f
		return nil
	})
}

// WithXRateLimitHeaders also sets X-RateLimit-Limit (the burst),
// -Remaining (as RateLimit's r) and -Reset (the seconds until the bucket is
// full again, rounded up: unlike RateLimit's t, not until the next
// request).
func WithXRateLimitHeaders() Option {
	return option("WithXRateLimitHeaders", func(m *Middleware) error { m.xRateLimit = true; return nil })
}
