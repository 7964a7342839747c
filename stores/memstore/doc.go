// Package memstore is an in-memory [apitoken.Store], for tests, examples and
// single-process apps. Nothing survives a restart.
//
// Quick start:
//
//	store := memstore.New()
//	iss, _ := apitoken.NewIssuer(store, apitoken.Policy{Prefix: "acme"})
//	v, _ := apitoken.NewValidator(store, apitoken.Policy{Prefix: "acme"})
//
// A Store is safe for concurrent use. It copies every token it is given and
// every token Get and List return, so callers cannot change stored state.
// GetByHash and ReadByHash, the Validator's lookups, share the token's
// strings, slices and maps with the store: treat them as read-only.
// ReadByHash writes into the caller's Token, so a validation on this store
// allocates nothing for the lookup. Times come back in UTC without a
// monotonic clock reading; LastUsedAt is kept to the microsecond, as the
// SQL store keeps it.
//
// The store holds millions of tokens without the garbage collector's work
// growing with them: a token costs about one heap object, whatever its
// roles, grants and metadata.
//
// The store is an [apitoken.UseMarker]: a Validator records a token's use in
// the store at once, instead of collecting uses and flushing them with
// Touch.
//
// The store is an [apitoken.PolicyRecorder]: it remembers the identity of
// the policy its tokens are issued under, so an Issuer under another prefix
// is refused.
//
// Only hashes are stored, never plaintext tokens.
package memstore
