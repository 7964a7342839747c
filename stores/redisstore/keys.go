package redisstore

import (
	"encoding/hex"
	"strings"

	"github.com/apitoken/apitoken"
)

// Key suffixes after the namespace prefix "{ns}:". The layout is described
// in the package documentation; the Lua scripts build the same names.
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
