package apitoken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Validation outcomes, in the order [Validator.Validate] checks them. Each is
// distinct under errors.Is; the error a call returns may wrap one of them with
// more detail, never with the token, its hash or a key.
var (
	// ErrMalformed means the presented string is not a token of this policy:
	// wrong length, prefix, alphabet or checksum. No store is consulted.
	ErrMalformed = errors.New("apitoken: malformed token")
	// ErrUnknown means the token is well formed but no stored token has its
	// hash (never issued, deleted, or issued for another org).
	ErrUnknown = errors.New("apitoken: unknown token")
	// ErrRevoked means the token was revoked. Lifecycle calls on a revoked
	// token return it too.
	ErrRevoked = errors.New("apitoken: token revoked")
	// ErrExpired means the token's expiry, or the grace period of a secret
	// replaced by [Issuer.Regenerate], has passed. [Issuer.Update] returns it
	// for an expired token.
	ErrExpired = errors.New("apitoken: token expired")
	// ErrIdle means the token has not been used for longer than the policy's
	// IdleTimeout (counted from creation if it was never used).
	ErrIdle = errors.New("apitoken: token idle too long")
	// ErrIPNotAllowed means the client address is outside the token's IP
	// filter, or is missing or unparseable while the token has a filter.
	ErrIPNotAllowed = errors.New("apitoken: client address not allowed")
	// ErrForbidden means the token lacks the access, role or resource the
	// request needs, or its user no longer has access to the org.
	ErrForbidden = errors.New("apitoken: forbidden")
	// ErrRateLimited means the token's (or its user's) rate limit is
	// exhausted. The error is a [*RateLimitError] carrying the retry delay.
	ErrRateLimited = errors.New("apitoken: rate limited")
)

// Errors of the lifecycle, the stores and the services.
var (
	// ErrPolicy means an issue or update request broke a policy rule, or a
	// Policy is invalid. The error is a [*PolicyError] naming the rule.
	ErrPolicy = errors.New("apitoken: policy violation")
	// ErrNotFound means no token has the given ID. Stores return it (wrapped
	// or not) for every missing record.
	ErrNotFound = errors.New("apitoken: not found")
	// ErrConflict means a store refused a write: the ID or hash already
	// exists, or an update was based on a stale Version.
	ErrConflict = errors.New("apitoken: conflict")
	// ErrTooManyTokens is returned by [Store.Create] when the owner already
	// holds the maximum number of live tokens. The Issuer reports it as a
	// [*PolicyError] with rule "MaxTokensPerOwner" that also matches this
	// value.
	ErrTooManyTokens = errors.New("apitoken: too many tokens for owner")
	// ErrStoreUnavailable wraps an infrastructure failure of a store, a
	// limiter or a user directory. Validation fails closed with it.
	ErrStoreUnavailable = errors.New("apitoken: store unavailable")
	// ErrClosed is returned by a service after its Close.
	ErrClosed = errors.New("apitoken: closed")
	// ErrNotRecoverable is returned by [Issuer.Recover] when no seal key is
	// configured or the token was stored without a sealed secret.
	ErrNotRecoverable = errors.New("apitoken: token secret is not recoverable")
	// ErrBadCursor means a List cursor is not one the store issued.
	ErrBadCursor = errors.New("apitoken: bad cursor")
	// ErrRandom means the random source failed; no token was produced.
	ErrRandom = errors.New("apitoken: random source failed")
)

// A PolicyError reports which policy rule an issue or update request broke,
// or which field of a [Policy] is invalid. It matches [ErrPolicy] under
// errors.Is.
type PolicyError struct {
	// Rule names the broken rule: a Policy field name such as
	// "MaxLifetime" or "RequireIPFilter", or a request rule such as
	// "NoEscalation" or "Name".
	Rule string
	// Detail says what was wrong, in words safe to show the caller.
	Detail string
	// Field names the Spec or Patch field the broken rule concerns when
	// the rule alone does not ("Roles", "Grants" or "Resources" for
	// NoEscalation); empty otherwise.
	Field string
	err   error // optional further sentinel, e.g. ErrTooManyTokens
}

// Error returns "apitoken: policy: <rule>: <detail>".
func (e *PolicyError) Error() string {
	if e.Detail == "" {
		return "apitoken: policy: " + e.Rule
	}
	return "apitoken: policy: " + e.Rule + ": " + e.Detail
}

// Is reports whether target is [ErrPolicy] (or the sentinel the rule also
// stands for, such as [ErrTooManyTokens]).
func (e *PolicyError) Is(target error) bool {
	return target == ErrPolicy || (e.err != nil && target == e.err)
}

func policyErr(rule, detail string) error { return &PolicyError{Rule: rule, Detail: detail} }

// A RateLimitError reports a rate-limited validation. It matches
// [ErrRateLimited] under errors.Is and carries the limiter's decision.
type RateLimitError struct {
	Decision Decision
}

// Error returns "apitoken: rate limited; retry after <n>s".
func (e *RateLimitError) Error() string {
	return "apitoken: rate limited; retry after " + strconv.FormatInt(int64((e.Decision.RetryAfter+time.Second-1)/time.Second), 10) + "s"
}

// Is reports whether target is [ErrRateLimited].
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// RetryAfter is the delay after which a retry may be allowed.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Decision.RetryAfter }

// A TokenError reports the rejection of a presented token that a store
// found: it names the token (by ID and hint, never its secret or hash) so
// logs and decision hooks can trace the rejection. Err is the reason: one
// of [ErrUnknown] (an org token presented in another org, or in no org on
// a multi-tenant Validator), [ErrRevoked], [ErrExpired], [ErrIdle],
// [ErrIPNotAllowed], [ErrForbidden] or a [*RateLimitError]; errors.Is and
// errors.As see it through Unwrap. Never show a TokenError's text to the
// client: the ID tells an attacker that the token exists.
type TokenError struct {
	TokenID string
	Hint    string
	// API and Access are what the request needed, set when the token (or
	// its user) lacked that access level to that API.
	API    string
	Access Access
	Err    error
}

// Error returns "apitoken: token <id>: <reason>", e.g. "apitoken: token
// 0192…: token revoked".
func (e *TokenError) Error() string {
	msg := "apitoken: token " + e.TokenID + ": " + strings.TrimPrefix(e.Err.Error(), "apitoken: ")
	if e.Access > AccessNone {
		msg += " (needs " + e.Access.String() + " access to " + strconv.Quote(e.API) + ")"
	}
	return msg
}

// Unwrap returns the reason.
func (e *TokenError) Unwrap() error { return e.Err }

// storeErr wraps err, a store's error, for op. A contract error
// ([ErrNotFound], [ErrConflict], [ErrTooManyTokens], [ErrBadCursor]) and
// the caller's own cancellation stay what they are; any other is a
// failure of the store itself (refused connection, timeout, full or
// corrupt store) and also matches [ErrStoreUnavailable], so that every
// caller tells an outage from a bad request, as validation does.
func storeErr(op string, err error) error {
	for _, contract := range []error{ErrNotFound, ErrConflict, ErrTooManyTokens, ErrBadCursor, ErrStoreUnavailable, context.Canceled} {
		if errors.Is(err, contract) {
			return fmt.Errorf("apitoken: %s: %w", op, err)
		}
	}
	return fmt.Errorf("apitoken: %s: %w: %w", op, ErrStoreUnavailable, err)
}
