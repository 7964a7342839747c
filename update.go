package apitoken

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Patch lists the changes [Issuer.Update] makes; nil fields stay as they
// are. The secret cannot be changed here; see [Issuer.Regenerate].
type Patch struct {
	Name        *string
	Description *string
	Roles       *[]string
	Grants      *Grants
	Resources   *[]string
	// Lifetime sets a new expiry counted from now.
	Lifetime *Lifetime
	// IPFilter replaces the filter (named or inline); a zero IPFilter
	// removes it.
	IPFilter *IPFilter
	// RateLimit sets the token's own limit; ResetRateLimit returns it to
	// the policy's default.
	RateLimit      *Limit
	ResetRateLimit bool
	Metadata       *map[string]string
	// IssuedBy, when set, is who asks; the result may not exceed its
	// privileges. [WithPrivileges] says the same for every call made with
	// a context.
	IssuedBy *Principal
	// IfVersion, when nonzero, makes the update conditional: it applies
	// only if the stored token's Version still equals IfVersion (the
	// version the caller last saw, as an HTTP If-Match would say), and
	// fails with [ErrConflict] otherwise, changing nothing.
	IfVersion int64
}

// maxRetries bounds the optimistic-concurrency retries of a read-modify-write.
const maxRetries = 5

// Update applies p to the token with the given ID and returns the stored
// result. A new Lifetime counts from now, but the expiry it gives may not
// pass the secret's issue ([Token.IssuedAt]) plus the policy's MaxLifetime,
// so no renewal keeps one secret alive longer than the maximum; only
// [Issuer.Regenerate] starts a new one. Errors: [ErrNotFound]; [ErrRevoked]
// or [ErrExpired] for a token that can no longer be modified (expired under
// the current policy: delete it and issue a new one); a [*PolicyError] if
// the result breaks the policy; [ErrConflict] if p.IfVersion is not the
// stored version, or if concurrent writers kept winning. Nothing changes on
// error. The patch's slices and maps are copied.
func (is *Issuer) Update(ctx context.Context, id string, p Patch) (*Token, error) {
	t, err := is.update(ctx, id, p)
	if err != nil {
		return nil, err
	}
	is.audit(ctx, EventUpdated, t, t.UpdatedAt)
	return t, nil
}

func (is *Issuer) update(ctx context.Context, id string, p Patch) (*Token, error) {
	return is.modify(ctx, "update", id, p.IfVersion, func(t *Token, now time.Time) error {
		if err := is.modifiable(t, now); err != nil {
			return err
		}
		if p.Name != nil {
			t.Name = *p.Name
		}
		if p.Description != nil {
			t.Description = *p.Description
		}
		if p.Roles != nil {
			t.Roles = slices.Clone(*p.Roles)
		}
		if p.Grants != nil {
			t.Grants = maps.Clone(*p.Grants)
		}
		if p.Resources != nil {
			t.Resources = slices.Clone(*p.Resources)
		}
		if p.IPFilter != nil {
			t.IPFilter = IPFilter{Name: p.IPFilter.Name, Prefixes: slices.Clone(p.IPFilter.Prefixes)}
		}
		if p.ResetRateLimit {
			t.RateLimit = nil
		}
		if p.RateLimit != nil {
			l := *p.RateLimit
			t.RateLimit = &l
		}
		if p.Metadata != nil {
			t.Metadata = maps.Clone(*p.Metadata)
		}
		if p.Lifetime != nil {
			life := is.pol.resolveLifetime(*p.Lifetime)
			if err := is.pol.checkLifetime(life, now, t.SecretIssuedAt()); err != nil {
				return err
			}
			t.ExpiresAt = life.ExpiresAt(now)
		}
		return is.check(ctx, t, p.IssuedBy)
	})
}

// modifiable reports why t, an expired (under the current policy) or
// revoked token, can no longer be modified or revealed (frozen: only Delete
// and listing still work).
func (is *Issuer) modifiable(t *Token, now time.Time) error {
	if t.Revoked() {
		return ErrRevoked
	}
	if at := is.pol.expiry(t); !at.IsZero() && !now.Before(at) {
		return ErrExpired
	}
	return nil
}

// modify reads the token, applies change and writes it back with a version
// check, retrying on conflicts unless ifVersion (nonzero) makes the write
// conditional on the version the caller saw.
func (is *Issuer) modify(ctx context.Context, op, id string, ifVersion int64, change func(t *Token, now time.Time) error) (*Token, error) {
	for range maxRetries {
		t, err := is.store.Get(ctx, id)
		if err != nil {
			return nil, storeErr(op, err)
		}
		if ifVersion != 0 && t.Version != ifVersion {
			return nil, fmt.Errorf("apitoken: %s: %w: token %s is at version %d, not %d", op, ErrConflict, id, t.Version, ifVersion)
		}
		now := is.cfg.clock().UTC()
		if err := change(t, now); err != nil {
			return nil, err
		}
		t.UpdatedAt = now
		err = is.store.Update(ctx, t)
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, storeErr(op, err)
		}
		// A conflict is a concurrent writer, unless the stored version is
		// still the one read: then the new hash is another token's.
		if cur, gerr := is.store.Get(ctx, id); gerr == nil && cur.Version == t.Version {
			return nil, fmt.Errorf("apitoken: %s: %w: token %s: the new secret's hash is already another token's "+
				"(is the random source repeating itself?)", op, ErrConflict, id)
		}
		if ifVersion != 0 {
			return nil, fmt.Errorf("apitoken: %s: %w", op, err)
		}
	}
	return nil, fmt.Errorf("apitoken: %s: %w: concurrent writers", op, ErrConflict)
}
