package apitoken

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RegenerateOption configures [Issuer.Regenerate].
type RegenerateOption func(*regenerate)

type regenerate struct {
	grace     time.Duration
	ifVersion int64
}

// WithGrace keeps the replaced secret valid for d after regeneration (capped
// at its old expiry), so clients can switch over without downtime. d may
// not exceed the policy's MaxGrace (a day by default).
func WithGrace(d time.Duration) RegenerateOption {
	return func(r *regenerate) { r.grace = d }
}

// WithIfVersion makes the regeneration conditional on the token's stored
// Version still being version (the one the caller last saw, as an HTTP
// If-Match would say): otherwise it fails with [ErrConflict], returns no
// secret and changes nothing. Of many callers conditioned on one version,
// exactly one succeeds.
func WithIfVersion(version int64) RegenerateOption {
	return func(r *regenerate) { r.ifVersion = version }
}

// Regenerate gives the token a new secret and a new expiry (lifetime from
// now; zero means the policy default), keeping its ID and settings, and
// returns the new plaintext once. With [WithGrace] the previous secret keeps
// working for the grace period; otherwise it stops at once. A token keeps
// at most one previous secret: regenerating again during a grace period
// ends the first rotation's old secret at once, and only the secret just
// replaced gets the new grace. Concurrent regenerations each replace the
// secret in turn, so exactly one secret (the last) stays live; with
// [WithIfVersion] only the first of them succeeds. An expired or revoked
// token is frozen: Regenerate fails with [ErrExpired] or [ErrRevoked]
// (delete it and issue a new one). The token must meet the current policy,
// as if issued now, and its roles, access and resources must be within the
// privileges of ctx ([WithPrivileges]): a manager gets a key only to a
// token they could have created. Regenerating counts as a use for the
// idle timeout, and the new secret's IssuedAt is now. Errors: [ErrNotFound],
// [ErrRevoked], [ErrExpired], a [*PolicyError] for the lifetime, a grace
// that is negative or above MaxGrace (rule "MaxGrace"), any other broken
// rule or privileges exceeded (rule "NoEscalation"), another prefix in
// the store (rule "Prefix"), [ErrRandom],
// [ErrConflict] or an error matching [ErrStoreUnavailable] when the store
// fails. Nothing changes and no secret is returned on error.
func (is *Issuer) Regenerate(ctx context.Context, id string, life Lifetime, opts ...RegenerateOption) (Secret, *Token, error) {
	var r regenerate
	for _, o := range opts {
		if o != nil {
			o(&r)
		}
	}
	if r.grace < 0 {
		return Secret{}, nil, policyErr("MaxGrace", "negative grace period")
	}
	if r.grace > is.pol.maxGrace {
		return Secret{}, nil, policyErr("MaxGrace", fmt.Sprintf("a grace period of %s exceeds the maximum of %s", r.grace, is.pol.maxGrace))
	}
	life = is.pol.resolveLifetime(life)
	var secret Secret
	t, err := is.modify(ctx, "regenerate", id, r.ifVersion, func(t *Token, now time.Time) error {
		if err := is.modifiable(t, now); err != nil {
			return err
		}
		if err := is.pol.checkLifetime(life, now, now); err != nil {
			return err
		}
		if err := is.check(ctx, t, nil); err != nil {
			return err
		}
		if err := is.checkPolicyID(ctx); err != nil { // after the checks: a refusal records nothing
			return err
		}
		t.PrevHash, t.PrevExpiresAt = Hash{}, time.Time{}
		if r.grace > 0 {
			t.PrevHash, t.PrevExpiresAt = t.Hash, now.Add(r.grace)
			if at := is.pol.expiry(t); !at.IsZero() && at.Before(t.PrevExpiresAt) {
				t.PrevExpiresAt = at
			}
		}
		var err error
		if secret, err = is.newSecret(t); err != nil {
			return err
		}
		t.ExpiresAt = life.ExpiresAt(now)
		t.IssuedAt = now
		t.LastUsedAt = now
		return nil
	})
	if err != nil {
		return Secret{}, nil, err
	}
	is.audit(ctx, EventRegenerated, t, t.UpdatedAt)
	return secret, t, nil
}

// Rehash moves a token found under an older hash key (Principal.KeyOutdated)
// to the current key. presented is the plaintext the client sent. Errors:
// [ErrMalformed], [ErrUnknown], or an error matching [ErrStoreUnavailable] when the store fails.
func (is *Issuer) Rehash(ctx context.Context, presented string) error {
	s, err := Parse(presented)
	if err != nil {
		return err
	}
	for i := range is.hash.keys() {
		h := is.hash.sum(i, s.Reveal())
		t, err := is.store.GetByHash(ctx, h)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return storeErr("rehash", err)
		}
		if i == 0 {
			return nil
		}
		id, current := t.ID, is.hash.sum(0, s.Reveal())
		_, err = is.modify(ctx, "rehash", id, 0, func(t *Token, _ time.Time) error {
			switch {
			case equal(t.Hash, h):
				t.Hash = current
			case equal(t.PrevHash, h):
				t.PrevHash = current
			}
			return nil
		})
		return err
	}
	return ErrUnknown
}
