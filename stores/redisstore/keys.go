package redisstore

import (
	"encoding/hex"
	"strings"

	"github.com/apitoken/apitoken"
)

// The key layout of a namespace ns. Every key starts with "{ns}:"; hashes
// appear in key names as 64 hex digits.
//
//	{ns}:h:<hash>     HASH    the token record, addressed by its current hash:
//	                          id, k (kind), o (owner), g (org), c, u, e, l, r (created,
//	                          updated, expires, last used, revoked: Unix µs, "" for none),
//	                          v (version), p (previous hash), pe (its expiry),
//	                          rl ("" for no override, else "rate burst"), j (JSON of the rest:
//	                          name, description, roles, grants, resources, IP filter,
//	                          metadata, hint, sealed secret), ia (IssuedAt, Unix µs, "" for
//	                          none; absent in records written before it, read as zero)
//	{ns}:h:<prev>     HASH    for a previous hash (grace period after Regenerate), an alias:
//	                          its only field, cur, holds the current hash
//	{ns}:i:<id>       STRING  ID → current hash
//	{ns}:ids          ZSET    every ID, score 0 (listing in ID order by ZRANGEBYLEX)
//	{ns}:ow:<kind>:<owner>  ZSET  IDs of an owner, kind (1 user, 2 org) and ID, score 0 (List by
//	                          owner, RevokeAll, per-owner bound)
//	{ns}:o:<owner>    ZSET    the owner index before owner kinds, both kinds' IDs under one
//	                          owner ID: only read, to upgrade (see sfxLegacy)
//	{ns}:g:<org>      ZSET    IDs of an org, score 0
//	{ns}:k:<kind>     ZSET    IDs of a kind (1 user, 2 org), score 0
//	{ns}:lu           ZSET    ID scored by last use, or creation if never used (µs): idle pruning
//	{ns}:end          ZSET    ID scored by expiry or revocation, whichever is first (µs): pruning
//	{ns}:ix           HASH    ID → "kind len(owner) owner org" of each token whose keys carry an
//	                          EXPIREAT: where Prune finds the indexes of a token Redis dropped
//	{ns}:rl:token:<id>  STRING  GCRA budget of an org token (theoretical arrival time, µs)
//	{ns}:rl:user:<id>   STRING  GCRA budget shared by a user's tokens
//	{ns}:pol          HASH    the identity of the policy the tokens are issued under
//	                          (apitoken.PolicyRecorder): p (prefix, never changed once
//	                          written), f (fingerprint of the latest writer's policy); no TTL
//
// A token's hashes and its aliases share one key space, so claiming a hash
// is one EXISTS, and a lookup by hash is one HMGET whatever the hash turns
// out to be. The record, its ID key and its alias get EXPIREAT at the
// token's end plus the retention; an end already past the retention when a
// token is written is left to Prune, so no key vanishes in the middle of an
// operation. Index entries a dropped token leaves behind are skipped by
// every operation; Prune removes them once its criteria reach the token's
// end (it meets the ID in lu and end and reads the owner, org and kind from
// ix, no SCAN), and List, RevokeAll and Create remove those in the index
// they walk. Budgets expire once full again. The scripts read keys they
// derive from stored values (an owner's IDs, a record's previous hash)
// without declaring them, which Redis Cluster allows within the slot of
// the declared key.
//
// Upgrading from the layout before owner kinds (sfxLegacy) needs no
// migration step: the first List by owner, RevokeAll or bounded Create for
// an owner ID moves the IDs of its old index into the index of each token's
// kind, in the same script (afterwards one EXISTS); updating, deleting or
// pruning a token also takes it out of the old index.
//
// Instants are whole Unix microseconds; Lua compares them exactly between
// the years 1685 and 2255.
//
// Key suffixes after the namespace prefix "{ns}:"; the Lua scripts build
// the same names.
const (
	sfxRecord   = "h:"  // + hex(hash): HASH, the token record; for a previous hash, an alias {cur: hex(current hash)}
	sfxID       = "i:"  // + ID: STRING, hex(current hash)
	sfxAll      = "ids" // ZSET of every ID, all scores 0 (lexicographic)
	sfxOwner    = "ow:" // + kind digit + ":" + OwnerID: ZSET of IDs, scores 0
	sfxLegacy   = "o:"  // + OwnerID: ZSET of IDs of either kind, the owner index before owner kinds (read-only, emptied by adopt)
	sfxOrg      = "g:"  // + OrgID: ZSET of IDs, scores 0
	sfxKind     = "k:"  // + kind digit: ZSET of IDs, scores 0
	sfxLastUsed = "lu"  // ZSET: ID scored by last use (or creation), µs
	sfxEnded    = "end" // ZSET: ID scored by expiry or revocation, µs
	sfxBudget   = "rl:" // + LimitKey.String(): STRING, GCRA theoretical arrival time
	sfxPrune    = "pl"  // STRING: a random lease of the Prune at work, with a TTL
	sfxPolicy   = "pol" // HASH: the policy identity, fields p (prefix) and f (fingerprint)
	hashHexLen  = 2 * len(apitoken.Hash{})
	redactedLen = 8 // hex digits of a hash kept when a key is named in an error
)

// keys builds key names under one namespace prefix, "{ns}:".
type keys struct{ prefix string }

func (k keys) record(h apitoken.Hash) string { return k.prefix + sfxRecord + hex.EncodeToString(h[:]) }
func (k keys) id(id string) string           { return k.prefix + sfxID + id }
func (k keys) all() string                   { return k.prefix + sfxAll }
func (k keys) owner(o apitoken.Owner) string {
	return k.prefix + sfxOwner + kindString(o.Kind) + ":" + o.ID
}
func (k keys) legacyOwner(id string) string { return k.prefix + sfxLegacy + id }
func (k keys) org(o string) string          { return k.prefix + sfxOrg + o }
func (k keys) kind(kd apitoken.Kind) string { return k.prefix + sfxKind + kindString(kd) }
func (k keys) lastUsed() string             { return k.prefix + sfxLastUsed }
func (k keys) ended() string                { return k.prefix + sfxEnded }
func (k keys) pruneLease() string           { return k.prefix + sfxPrune }
func (k keys) policy() string               { return k.prefix + sfxPolicy }
func (k keys) budget(lk apitoken.LimitKey) string {
	return k.prefix + sfxBudget + lk.String()
}

// redact returns key as it may appear in an error: the hash in a record
// key is cut to its first 8 hex digits and "…", enough to find the key with
// SCAN MATCH, never the hash itself.
func (k keys) redact(key string) string {
	p := k.prefix + sfxRecord
	if rest, ok := strings.CutPrefix(key, p); ok && len(rest) == hashHexLen {
		return p + rest[:redactedLen] + "…"
	}
	return key
}

// recordFields are the fields of a record, in script order, and last the
// one field of a previous-hash alias.
var recordFields = []string{"id", "k", "o", "g", "c", "u", "e", "l", "r", "v", "p", "pe", "rl", "j", "ia", "cur"}
