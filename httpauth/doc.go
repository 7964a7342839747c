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
// Rate-limit answers: a request under a token's rate limit gets the IETF
// RateLimit fields (draft-ietf-httpapi-ratelimit-headers), Structured
// Field lists never sent as trailers: RateLimit-Policy
// `"default";q=<burst>;w=<seconds to refill the burst>` and RateLimit
// `"default";r=<requests available now>;t=<seconds until one more is>`.
// t is the draft's time until additional quota is made available (within
// it the client can use no more than r), not the time until the bucket is
// full, which only X-RateLimit-Reset gives ([WithXRateLimitHeaders]). A
// 429 adds Retry-After (RFC 9110 §10.2.3), the whole seconds until the
// next request is allowed, rounded up and at least 1: it equals the 429's
// t, so it is never earlier than t, as the draft asks, and a client that
// waits it is let through unless others spent the budget meanwhile.
//
// Credentials follow RFC 6750: a token is a b64token (a non-ASCII byte, a
// space, a comma or a quote makes the request malformed: 400
// invalid_request, without a store lookup), and a request uses one method:
// the query parameter ([WithQueryParam]) beside a header, or twice, is a
// 400 even with the same token.
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
