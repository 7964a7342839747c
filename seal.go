package apitoken

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Recover returns the plaintext of a recoverable token (see [WithSealKeys]),
// only to a caller who could have created the token: its roles, access,
// resources and rate limit must be within the privileges of ctx
// ([WithPrivileges]). Every recovery is an [EventRecovered] for the audit
// hook and is logged at Warn, with its actor, to the Issuer's logger.
// Errors: [ErrNotRecoverable] without seal keys, for a token stored without
// a sealed secret, or if no configured key opens it; [ErrRevoked] or
// [ErrExpired] for a token that no longer works; a [*PolicyError] (rule
// "NoEscalation" or "MaxRateLimit") for privileges exceeded; [ErrNotFound].
func (is *Issuer) Recover(ctx context.Context, id string) (Secret, error) {
	if is.seal == nil {
		return Secret{}, fmt.Errorf("%w: no seal keys configured", ErrNotRecoverable)
	}
	t, err := is.Get(ctx, id)
	if err != nil {
		return Secret{}, err
	}
	now := is.cfg.clock()
	if err := is.modifiable(t, now); err != nil {
		return Secret{}, err
	}
	if len(managers(ctx, nil)) > 0 {
		if err := is.pol.checkRateLimit(t); err != nil {
			return Secret{}, err
		}
		if err := is.mayHold(ctx, t, nil); err != nil {
			return Secret{}, err
		}
	}
	if len(t.Sealed) == 0 {
		return Secret{}, fmt.Errorf("%w: token %s was stored without its secret", ErrNotRecoverable, t.ID)
	}
	s, err := is.seal.open(t.ID, t.Sealed)
	if err != nil {
		return Secret{}, err
	}
	is.audit(ctx, EventRecovered, t, now.UTC())
	return newSecret(s), nil
}

// sealer seals and opens recoverable secrets. Its keys live only inside the
// closures, out of reach of fmt and reflection.
type sealer struct {
	seal func(id, s string) ([]byte, error)
	open func(id string, sealed []byte) (string, error)
}

// newSealer builds a sealer over a ring of 32-byte keys; keys[0] seals. A
// sealed secret is key fingerprint (4 bytes) || nonce (24) || ciphertext,
// with the token ID as associated data.
func newSealer(keys [][]byte, random io.Reader) (*sealer, error) {
	type ringKey struct {
		fp   [4]byte
		aead cipher.AEAD
	}
	ring := make([]ringKey, len(keys))
	for i, k := range keys {
		aead, err := chacha20poly1305.NewX(k)
		if err != nil {
			return nil, err
		}
		ring[i] = ringKey{fingerprint(k), aead}
	}
	const head = 4 + chacha20poly1305.NonceSizeX
	return &sealer{
		seal: func(id, s string) ([]byte, error) {
			out := make([]byte, head, head+len(s)+ring[0].aead.Overhead())
			copy(out, ring[0].fp[:])
			if _, err := io.ReadFull(random, out[4:head]); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrRandom, err)
			}
			return ring[0].aead.Seal(out, out[4:head], []byte(s), []byte(id)), nil
		},
		open: func(id string, sealed []byte) (string, error) {
			if len(sealed) < head {
				return "", fmt.Errorf("%w: token %s: sealed secret is corrupt", ErrNotRecoverable, id)
			}
			for _, k := range ring {
				if string(k.fp[:]) != string(sealed[:4]) {
					continue
				}
				pt, err := k.aead.Open(nil, sealed[4:head], sealed[head:], []byte(id))
				if err != nil {
					return "", fmt.Errorf("%w: token %s: sealed secret does not open", ErrNotRecoverable, id)
				}
				return string(pt), nil
			}
			return "", fmt.Errorf("%w: token %s: sealed under a key that is not configured", ErrNotRecoverable, id)
		},
	}, nil
}

func fingerprint(key []byte) [4]byte {
	sum := sha256.Sum256(append([]byte("apitoken seal key\x00"), key...))
	return [4]byte(sum[:4])
}
