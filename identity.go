package apitoken

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
)

// PolicyID identifies the policy a store's tokens are issued under, as
// [Policy.ID] computes it. The zero PolicyID is none.
type PolicyID struct {
	// Prefix is the policy's token prefix ("tok" for a policy that sets
	// none). A Validator under another prefix rejects the tokens as
	// malformed.
	Prefix string
	// Fingerprint is 16 hex digits that change with any field of the
	// policy: equal policies have equal fingerprints.
	Fingerprint string
}

// IsZero reports whether id is the zero PolicyID (no identity).
func (id PolicyID) IsZero() bool { return id == PolicyID{} }

// ID returns the identity of p: its prefix ("tok" when empty) and a
// fingerprint of the whole policy, the first 16 hex digits of the SHA-256
// of a canonical JSON form of p in which a nil and an empty slice or map
// are alike. Two processes that load the
// same policy, one from Go and one from its file (see
// [Policy.MarshalJSON]), get the same ID.
func (p Policy) ID() PolicyID {
	if p.Prefix == "" {
		p.Prefix = "tok"
	}
	return PolicyID{Prefix: p.Prefix, Fingerprint: policyFingerprint(p)}
}

// policyFingerprint hashes the JSON of canonical(p): struct fields with
// sorted keys, map entries sorted.
func policyFingerprint(p Policy) string {
	c, _ := canonical(reflect.ValueOf(p))
	b, err := json.Marshal(c)
	if err != nil { // a validated policy always encodes (no NaN rates)
		b = fmt.Appendf(nil, "%#v", p)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// canonical returns v as a value for encoding/json in which the fields of
// a struct at their zero value or holding an empty slice or map are left
// out, so nil and empty are alike and a field added later changes no
// fingerprint until it is set. Entries of a map are all kept: a role with
// nothing set is still a role. empty reports whether v is zero or empty.
// A struct that is an encoding.TextMarshaler (a Lifetime) is its text.
func canonical(v reflect.Value) (c any, empty bool) {
	switch v.Kind() {
	case reflect.Struct:
		if tm, ok := v.Interface().(encoding.TextMarshaler); ok {
			b, err := tm.MarshalText()
			return string(b), err == nil && v.IsZero()
		}
		out := map[string]any{}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				if fc, empty := canonical(v.Field(i)); !empty {
					out[f.Name] = fc
				}
			}
		}
		return out, len(out) == 0
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())], _ = canonical(it.Value())
		}
		return out, len(out) == 0
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i], _ = canonical(v.Index(i))
		}
		return out, len(out) == 0
	}
	return v.Interface(), v.IsZero()
}

// PolicyRecorder is an optional capability of a [Store] that remembers the
// identity of the policy its tokens are issued under, so that an [Issuer]
// whose policy has another prefix (an operator's tool started without the
// servers' policy, say) is refused before it issues a token the servers
// reject as malformed. Before every Issue and Regenerate, an Issuer whose
// store has it calls RecordPolicy with its own [Policy.ID].
//
// RecordPolicy with a nonzero id:
//   - on a store that holds no identity, records id and returns id;
//   - on a store that holds an identity with another Prefix, changes
//     nothing and returns the held identity: the first prefix recorded
//     stays;
//   - on a store that holds an identity with the same Prefix, records
//     id.Fingerprint and returns the held identity as it was before the
//     call, so the caller learns the fingerprint it replaced (policies
//     change: the store keeps that of the latest writer).
//
// RecordPolicy with the zero id only reads: it returns the held identity,
// or the zero PolicyID if there is none, and writes nothing.
//
// Each call is one atomic step: of concurrent first calls, exactly one
// records its id and every other one returns an identity with the
// recorded Prefix. The identity outlives the tokens (deleting or pruning
// every token keeps it); only the store's administrator clears it, by
// hand, to move the store to another prefix. Errors are infrastructure
// failures only.
type PolicyRecorder interface {
	RecordPolicy(ctx context.Context, id PolicyID) (PolicyID, error)
}

// checkPolicyID records the Issuer's policy identity in its store, if the
// store is a [PolicyRecorder], before Issue or Regenerate writes a secret.
// A store holding another prefix is a [*PolicyError] with rule "Prefix"
// naming both prefixes; another fingerprint under the same prefix is only
// logged (a warning to the Issuer's logger): policies change. A failing
// store is an error matching [ErrStoreUnavailable].
//
// It asks the store on every call rather than once per Issuer: the store
// then always holds the fingerprint of the latest writer, so an Issuer
// warns whenever another policy wrote since its own last write, and a
// store whose identity was cleared is recorded again. The call is one
// small read (one round trip) when the store already holds this identity.
func (is *Issuer) checkPolicyID(ctx context.Context) error {
	rec, ok := is.store.(PolicyRecorder)
	if !ok {
		return nil
	}
	mine := is.src.ID()
	held, err := rec.RecordPolicy(ctx, mine)
	if err != nil {
		return storeErr("record policy", err)
	}
	if held.Prefix != mine.Prefix {
		return &PolicyError{Rule: "Prefix", Detail: fmt.Sprintf(
			"the store holds tokens of policy prefix %q, this Issuer's policy has prefix %q: "+
				"give it the policy the store's tokens are issued under (their servers reject %s_ tokens as malformed), "+
				"or a store of its own", held.Prefix, mine.Prefix, mine.Prefix)}
	}
	if held.Fingerprint != mine.Fingerprint && is.cfg.logger != nil {
		is.cfg.logger.LogAttrs(ctx, slog.LevelWarn,
			"apitoken: the store's tokens were last issued under another policy with the same prefix; "+
				"if no policy change explains it, give this Issuer the policy of the store's servers",
			slog.String("prefix", mine.Prefix), slog.String("store_fingerprint", held.Fingerprint),
			slog.String("policy_fingerprint", mine.Fingerprint))
	}
	return nil
}
