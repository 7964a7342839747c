// Package httpauth is the net/http side of package apitoken: middleware
// that authenticates each request with an [apitoken.Validator], puts the
// [apitoken.Principal] in the request context and answers rejections
// itself (RFC 6750 challenges, IETF RateLimit headers, and RFC 9457
// problem bodies of the same shape as package adminapi's, with a
// machine-readable "code": invalid_request, unauthenticated, invalid_token,
// insufficient_scope, rate_limited or unavailable).
//
// Quick start (single tenant; see [WithOrg] for many):
//
//	v, err := apitoken.NewValidator(store, policy,
//		apitoken.WithLimiter(apitoken.NewLocalLimiter()), apitoken.WithSingleTenant("org_1"))
//	auth, err := httpauth.New(v)
//	mux := http.NewServeMux()
//	mux.Handle("GET /devices/{id}", auth.Wrap(devices)) // API "devices", read access
//	// in devices: p, _ := httpauth.PrincipalFrom(r.Context())
//
// What a host declares, and what happens when it does not:
//
//   - Trust: the client address is the connection's peer unless
//     [WithTrustedProxies] names the proxies and the one header they set;
//     no other forwarding header is ever read ([ClientIPSource]).
//   - Tenancy: a multi-tenant Validator needs [WithOrg]; [New] fails
//     without it.
//   - API names: the first segment of the matched ServeMux pattern; a
//     request with no pattern (the middleware wraps a whole mux, or another
//     router) is denied unless [WithAPI] or [WithAPIName] names its API.
//
// A [Middleware] is immutable once built and safe for concurrent use, as
// are the handlers [Middleware.Wrap], [Middleware.RequireRole] and
// [Middleware.RequireAccess] return and a [ClientIPSource].
//
// Security notes: 401 answers are byte-identical for malformed, unknown,
// revoked, expired, idle and other-org tokens, so a response is no oracle;
// only the observer ([WithObserver], [SlogObserver]) learns the reason and,
// for a found token, its ID and hint. Failed authentications are
// throttled per client by default ([WithFailureLimit]), so forged tokens
// with valid checksums cannot flood the store. The handler never sees the
// consumed credential ([WithForwardCredential] to keep it). The query
// parameter source is off by default: URLs leak into logs.
package httpauth
