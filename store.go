package apitoken

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Store persists token records. Implementations must be safe for concurrent
// use. The conformance suite in package storetest checks every clause below;
// a third-party store that passes storetest.Run works with this package.
//
// Ownership: a store copies the *Token it is given before keeping it, and
// Get and List return copies the caller may modify. GetByHash is the hot
// path: it may return a shared snapshot, which the caller must not modify
// and the store must never modify afterwards (replace it instead).
//
// Errors: a missing record is reported as [ErrNotFound] (wrapped or not),
// never as (nil, nil); a refused write as [ErrConflict]; anything else is an
// infrastructure failure. A store never receives a plaintext token.
//
// Readiness: a store that can be set up wrongly (a database without its
// schema, say) may also have a method Ready(ctx context.Context) error,
// which reports nil when the store can serve, an error matching
// [ErrStoreUnavailable] when it cannot be reached (it may come up later),
// and any other error for a setup it cannot serve, with a message that says
// what to do. [NewIssuer], [NewValidator] and [NewPruner] call it (for at
// most five seconds) and fail on such a setup error, so a store that was
// never migrated stops the program at start-up, not at its first request.
type Store interface {
	// Create stores a new token. It fails with ErrConflict if a token with
	// the same ID exists or if t.Hash (or a nonzero t.PrevHash) equals the
	// Hash or PrevHash of any stored token. If maxPerOwner > 0 and the
	// owner (t.Owner(): kind and ID) already has maxPerOwner live tokens
	// (not revoked, and not expired at t.CreatedAt), it fails with
	// ErrTooManyTokens and stores nothing; the count and the insert are one
	// atomic step. When both refusals apply, either error may come back.
	// t.Version is stored as given.
	Create(ctx context.Context, t *Token, maxPerOwner int) error

	// Get returns the token with the given ID, or ErrNotFound.
	Get(ctx context.Context, id string) (*Token, error)

	// GetByHash returns the token whose Hash, or nonzero PrevHash, equals h,
	// or ErrNotFound. The result may be shared; see the Store doc.
	GetByHash(ctx context.Context, h Hash) (*Token, error)

	// Update replaces the stored token with ID t.ID if the stored Version
	// equals t.Version; the stored Version becomes t.Version+1 and t.Version
	// is set to it. A missing token is ErrNotFound; a different stored
	// Version, or a Hash or PrevHash held by another token, is ErrConflict.
	// LastUsedAt is kept monotone: the later of the stored and given values
	// is stored.
	Update(ctx context.Context, t *Token) error

	// Revoke sets the token's RevokedAt and UpdatedAt to at and increments
	// its Version. Revoking a revoked token succeeds and changes nothing
	// (idempotent: the first RevokedAt stays). A missing token is
	// ErrNotFound.
	Revoke(ctx context.Context, id string, at time.Time) error

	// RevokeAll revokes, in one atomic step and as Revoke does, every not
	// yet revoked token of owner (its Kind and ID both equal: user "42" and
	// org "42" are different owners), and returns how many it revoked.
	RevokeAll(ctx context.Context, owner Owner, at time.Time) (int, error)

	// Delete removes the token. A missing token is ErrNotFound.
	Delete(ctx context.Context, id string) error

	// List returns the tokens matching f in ascending ID order (creation
	// order for UUID v7 IDs), f.PageSize() of them at most, and a cursor
	// for the next page. Next is empty when no token follows; on a last page
	// that is exactly full it may be set, and following it then yields an
	// empty page with an empty Next. Pages are stable: a token created or
	// deleted between pages does not make another be skipped or repeated.
	// A malformed cursor is ErrBadCursor.
	List(ctx context.Context, f Filter) (Page, error)

	// Touch records uses in one batch: each token's LastUsedAt becomes the
	// later of its stored value and Use.At (never earlier). Unknown IDs are
	// skipped. Touch does not change Version or UpdatedAt.
	Touch(ctx context.Context, uses []Use) error

	// Prune deletes min(r.Limit, number matching) tokens matching r and
	// returns how many it deleted, so a count below r.Limit means nothing
	// else matched (a store may skip rows another pruner holds locked at
	// that moment; a later pass gets any it left). The criteria are re-checked at deletion, in the same
	// atomic step, so a token touched after a scan began is not deleted.
	// Stores may run Prune from several processes at once.
	Prune(ctx context.Context, r PruneRequest) (int, error)
}

// Filter selects tokens for [Store.List]. Zero fields match everything.
type Filter struct {
	// Owner selects one owner's tokens: its Kind and ID must both match
	// (user "42" and org "42" are different owners).
	Owner Owner
	OrgID string
	Kind  Kind
	// Limit is the page size; see [Filter.PageSize].
	Limit int
	// Cursor continues a previous List; empty starts at the beginning.
	Cursor string
}

// Page is one page of a listing.
type Page struct {
	Tokens []*Token
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// Use is one last-used record for [Store.Touch].
type Use struct {
	ID string
	At time.Time
}

// PruneRequest selects tokens for [Store.Prune]. A token matches if either
// criterion holds; a zero instant disables its criterion.
type PruneRequest struct {
	// IdleBefore matches tokens whose last use (or creation, if never used)
	// is before this instant.
	IdleBefore time.Time
	// EndedBefore matches tokens that expired or were revoked before this
	// instant.
	EndedBefore time.Time
	// Limit bounds the number of deletions; it must be positive.
	Limit int
}

// Matches reports whether t matches r. Stores may use it to re-check.
func (r PruneRequest) Matches(t *Token) bool {
	if !r.IdleBefore.IsZero() && t.ActiveAt().Before(r.IdleBefore) {
		return true
	}
	if r.EndedBefore.IsZero() {
		return false
	}
	return (!t.ExpiresAt.IsZero() && t.ExpiresAt.Before(r.EndedBefore)) ||
		(!t.RevokedAt.IsZero() && t.RevokedAt.Before(r.EndedBefore))
}

// Matches reports whether t matches f's Owner, OrgID and Kind.
func (f Filter) Matches(t *Token) bool {
	return (f.Owner.IsZero() || t.Owner() == f.Owner) &&
		(f.OrgID == "" || t.OrgID == f.OrgID) &&
		(f.Kind == 0 || t.Kind == f.Kind)
}

// DefaultPageSize is the page size of a [Filter] with a zero Limit;
// MaxPageSize is the largest; stores honour every size in between.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize returns f.Limit clamped to [1, MaxPageSize], or DefaultPageSize
// when it is zero or negative.
func (f Filter) PageSize() int {
	switch {
	case f.Limit <= 0:
		return DefaultPageSize
	case f.Limit > MaxPageSize:
		return MaxPageSize
	}
	return f.Limit
}

// EncodeCursor returns an opaque cursor that continues a listing after the
// token with ID lastID. Stores may use it, or any encoding of their own.
func EncodeCursor(lastID string) string {
	return "c1" + base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// DecodeCursor returns the ID EncodeCursor encoded, or [ErrBadCursor].
func DecodeCursor(c string) (string, error) {
	if len(c) < 3 || len(c) > 512 || c[:2] != "c1" {
		return "", ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(c[2:])
	if err != nil || len(b) == 0 || !utf8.Valid(b) || EncodeCursor(string(b)) != c {
		return "", ErrBadCursor // only the canonical encoding is accepted
	}
	return string(b), nil
}

// HashReader is an optional capability of a [Store] that keeps its records
// in process memory (such as memstore): ReadByHash is GetByHash writing the
// token into dst instead of allocating one, so a [Validator] reads into a
// reused Token and allocates nothing but its Principal. dst's strings, slices
// and maps may be shared with the store and must not be modified. Errors are
// as GetByHash's; on error dst is unspecified.
type HashReader interface {
	ReadByHash(ctx context.Context, h Hash, dst *Token) error
}

// UseMarker is an optional capability of a [Store] that keeps its records in
// process memory (such as memstore), where writing a use costs less than
// remembering it: a [Validator] then records a token's use with MarkUsed
// at once (at most about once per flush interval) instead of collecting it
// for a batched Touch. MarkUsed is Touch for the one token whose Hash or
// PrevHash is h: LastUsedAt moves forward to at, never back; Version and
// UpdatedAt stay; a hash no token has is not an error. It must be safe
// concurrently with every other method. On an error the Validator falls
// back to collecting the use for Touch.
type UseMarker interface {
	MarkUsed(ctx context.Context, h Hash, at time.Time) error
}

// LookupLimiter is an optional capability of a [Store] that also keeps
// rate-limit budgets (such as a Redis store): it looks a token up and takes
// its rate-limit decision in one round trip. A [Validator] uses it when it is
// given the store itself as its limiter (WithLimiter(store)).
type LookupLimiter interface {
	Store
	Limiter
	// GetByHashAllow does what GetByHash does and, when the token is found
	// and neither revoked nor expired at now, takes one request from its
	// budget, with the key and limit [LimitDefaults.LimitFor] gives. It
	// returns a nil Decision when it took none (zero limit,
	// revoked or expired token). The budget is shared with Allow under the
	// same key.
	GetByHashAllow(ctx context.Context, h Hash, defaults LimitDefaults, now time.Time) (*Token, *Decision, error)

	// Refund gives back one request that Allow or GetByHashAllow took from
	// key's budget under limit: the bucket gains one request, never more
	// than it holds when full. The Validator calls it when a request it
	// charged in GetByHashAllow is then denied (idle, IP, role, access,
	// resource), so a denied request costs no budget. Refunding a key with
	// no state (a full bucket) changes nothing and is no error.
	Refund(ctx context.Context, key LimitKey, limit Limit, now time.Time) error
}

// readyTimeout bounds the readiness check of a constructor.
const readyTimeout = 5 * time.Second

// checkReady calls store's Ready method, if it has one (see [Store]), and
// returns its error unless it is only an unavailable store.
func checkReady(op string, store Store) error {
	r, ok := store.(interface{ Ready(context.Context) error })
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout) // a constructor has no caller's context
	defer cancel()
	if err := r.Ready(ctx); err != nil && !errors.Is(err, ErrStoreUnavailable) {
		return fmt.Errorf("apitoken: %s: the store cannot serve: %w", op, err)
	}
	return nil
}
