package httpauth

import "errors"

// Rejections the middleware decides itself, before or instead of
// validating a token. Each is distinct under errors.Is; the observer
// ([WithObserver]) and the error handler ([WithErrorHandler]) get them in
// [Outcome.Err] and [Failure.Err]. The validator's own rejections
// ([apitoken.ErrUnknown] and the rest, wrapped in an [*apitoken.TokenError]
// once a stored token was found) pass through unchanged.
var (
	// ErrNoCredentials means the request carries no token: 401 with a
	// Bearer challenge and no error code.
	ErrNoCredentials = errors.New("httpauth: no credentials")
	// ErrBadCredentials means the request's credentials are malformed (a
	// Bearer header, API-key header or query parameter that is not one
	// RFC 6750 b64token: empty, non-ASCII, a space, comma or quote), it
	// carries two different tokens, or the query parameter beside another
	// source or twice: 400 invalid_request.
	ErrBadCredentials = errors.New("httpauth: malformed credentials")
	// ErrNoAPI means the request's API name could not be known: no
	// ServeMux pattern matched (the middleware wraps the whole mux, or
	// another router), or the pattern's first segment is empty, a wildcard
	// or a dot segment, and no [WithAPI] or [WithAPIName] names it: 403
	// insufficient_scope, without a store lookup.
	ErrNoAPI = errors.New("httpauth: the request's API is unknown")
	// ErrThrottled means the client has spent its budget of failed
	// authentications ([WithFailureLimit]): 429 with Retry-After, without
	// validating the token.
	ErrThrottled = errors.New("httpauth: too many failed authentications from this client")
)
