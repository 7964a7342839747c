package apitoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kind says whom a token acts for.
type Kind uint8

// Token kinds. The zero Kind is invalid.
const (
	// KindUser tokens act for a user, with the user's current privileges in
	// whichever org a request names (looked up through a [Directory]),
	// narrowed by the token's own roles, grants and resources if it has any.
	KindUser Kind = 1
	// KindOrg tokens act for an org with the roles and grants stored on the
	// token, and only within that org.
	KindOrg Kind = 2
)

// String returns "user", "org" or "invalid".
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindOrg:
		return "org"
	}
	return "invalid"
}

// MarshalText encodes k as "user" or "org".
func (k Kind) MarshalText() ([]byte, error) {
	if k != KindUser && k != KindOrg {
		return nil, fmt.Errorf("apitoken: invalid kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes "user" or "org".
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "user":
		*k = KindUser
	case "org":
		*k = KindOrg
	default:
		return fmt.Errorf("apitoken: invalid kind %q", b)
	}
	return nil
}

// Access is a level of access to one API. Levels are ordered: a higher level
// includes the lower ones.
type Access uint8

// Access levels.
const (
	AccessNone Access = 0 // no access
	AccessRead Access = 1 // read-only access (GET, HEAD, OPTIONS)
	AccessFull Access = 2 // read and write access
)

// String returns "none", "read" or "full".
func (a Access) String() string {
	switch a {
	case AccessNone:
		return "none"
	case AccessRead:
		return "read"
	case AccessFull:
		return "full"
	}
	return "invalid"
}

// MarshalText encodes a as "none", "read" or "full".
func (a Access) MarshalText() ([]byte, error) {
	if a > AccessFull {
		return nil, fmt.Errorf("apitoken: invalid access level %d", uint8(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText decodes "none", "read" or "full".
func (a *Access) UnmarshalText(b []byte) error {
	switch string(b) {
	case "none":
		*a = AccessNone
	case "read":
		*a = AccessRead
	case "full":
		*a = AccessFull
	default:
		return fmt.Errorf("apitoken: invalid access level %q", b)
	}
	return nil
}

// AllAPIs is the [Grants] key whose level applies to every API without an
// entry of its own.
const AllAPIs = "*"

// Grants maps API names to access levels. The [AllAPIs] entry ("*") applies
// to every API that has no entry of its own, so {"*": full, "billing": none}
// grants everything but billing. A nil Grants grants nothing.
type Grants map[string]Access

// For returns the access level g gives to api.
func (g Grants) For(api string) Access {
	if a, ok := g[api]; ok {
		return a
	}
	return g[AllAPIs]
}

// IPFilter restricts the client addresses a token may be used from: either a
// named filter of the [Policy] (resolved at validation time, so changing the
// policy changes every token that names it) or inline prefixes. The zero
// IPFilter allows every address.
type IPFilter struct {
	Name     string         `json:"name,omitempty"`
	Prefixes []netip.Prefix `json:"prefixes,omitempty"`
}

// IsZero reports whether f allows every address.
func (f IPFilter) IsZero() bool { return f.Name == "" && len(f.Prefixes) == 0 }

// Hash is the stored digest of a token: HMAC-SHA256 under the current hash
// key, or SHA-256 when no key is configured. It is not secret, but it is
// never shown to users or put in errors.
type Hash [sha256.Size]byte

// IsZero reports whether h is the zero hash (no hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// Token is the stored record of a token. It never holds the plaintext
// secret. Stores keep copies; see [Store] for who may modify what.
type Token struct {
	ID          string `json:"id"` // UUID v7, set by the Issuer
	Kind        Kind   `json:"kind"`
	OwnerID     string `json:"owner_id"` // user ID for user tokens, org ID for org tokens
	OrgID       string `json:"org_id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Roles and Grants are the token's privileges (org tokens) or the limits
	// it puts on its user's privileges (user tokens; empty means none).
	Roles  []string `json:"roles,omitempty"`
	Grants Grants   `json:"grants,omitempty"`
	// Resources limits the token to these resources (e.g. site IDs); empty
	// means all.
	Resources []string          `json:"resources,omitempty"`
	IPFilter  IPFilter          `json:"ip_filter,omitzero"`
	RateLimit *Limit            `json:"rate_limit,omitempty"` // nil: the policy's default
	Metadata  map[string]string `json:"metadata,omitempty"`

	Hint string `json:"hint"` // e.g. "acme_8f3K…x9Q2"; the only form shown after issue
	Hash Hash   `json:"-"`
	// PrevHash is the hash of the secret Regenerate replaced, valid until
	// PrevExpiresAt (the grace period); zero when there is none.
	PrevHash      Hash      `json:"-"`
	PrevExpiresAt time.Time `json:"-"`
	// Sealed is the secret encrypted under a seal key (recoverable tokens
	// only); nil otherwise.
	Sealed []byte `json:"-"`

	CreatedAt time.Time `json:"created_at"`
	// IssuedAt is when the current secret was issued (by Issue or
	// Regenerate); the policy's MaxLifetime counts from it. Zero (a record
	// from before this field) means CreatedAt.
	IssuedAt   time.Time `json:"issued_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`   // zero: never
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // zero: never used
	RevokedAt  time.Time `json:"revoked_at,omitzero"`   // zero: not revoked
	// Version counts writes, for optimistic concurrency; see [Store.Update].
	Version int64 `json:"version"`
}

// Clone returns a deep copy of t. Store implementations use it to copy
// records in and out.
func (t *Token) Clone() *Token {
	if t == nil {
		return nil
	}
	c := *t
	c.Roles = slices.Clone(t.Roles)
	c.Grants = maps.Clone(t.Grants)
	c.Resources = slices.Clone(t.Resources)
	c.IPFilter.Prefixes = slices.Clone(t.IPFilter.Prefixes)
	if t.RateLimit != nil {
		l := *t.RateLimit
		c.RateLimit = &l
	}
	c.Metadata = maps.Clone(t.Metadata)
	c.Sealed = slices.Clone(t.Sealed)
	return &c
}

// Owner returns whom t belongs to: its Kind and OwnerID.
func (t *Token) Owner() Owner { return Owner{Kind: t.Kind, ID: t.OwnerID} }

// SecretIssuedAt returns when t's current secret was issued: IssuedAt, or
// CreatedAt for a record without it.
func (t *Token) SecretIssuedAt() time.Time {
	if t.IssuedAt.IsZero() {
		return t.CreatedAt
	}
	return t.IssuedAt
}

// Revoked reports whether t has been revoked.
func (t *Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether t has expired at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// ActiveAt returns the instant idleness is counted from: the last use, or
// creation if the token was never used.
func (t *Token) ActiveAt() time.Time {
	if t.LastUsedAt.After(t.CreatedAt) {
		return t.LastUsedAt
	}
	return t.CreatedAt
}

// Token format: <prefix>_<body><checksum>.
const (
	// BodyLen is the number of random base62 characters in a token (about
	// 178 bits).
	BodyLen = 30
	// ChecksumLen is the length of the base62 CRC32 checksum suffix.
	ChecksumLen = 6
	// MaxPrefixLen is the longest prefix a Policy may set.
	MaxPrefixLen = 16
	// MaxTokenLen caps the input Parse looks at; longer input is
	// malformed without further work.
	MaxTokenLen = 256

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// base62Val maps a byte to its base62 digit value, or 0xFF.
var base62Val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = byte(i)
	}
	return t
}()

// checksum returns the CRC32-IEEE of body written as six base62 digits,
// most significant first, zero-padded: the scheme of GitHub's tokens.
func checksum(body string) [ChecksumLen]byte {
	c := crc32IEEE(body)
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = base62[c%62]
		c /= 62
	}
	return out
}

// crcTables are the slicing-by-8 tables of CRC32-IEEE: crcTables[0] is
// crc32.IEEETable, crcTables[k][b] the CRC of byte b followed by k zero bytes.
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][byte(c)] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

// crc32IEEE is crc32.ChecksumIEEE for a string, eight bytes a step, without
// converting (and so allocating) a []byte.
func crc32IEEE(s string) uint32 {
	c := ^uint32(0)
	for len(s) >= 8 {
		c ^= uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		c = crcTables[0][s[7]] ^ crcTables[1][s[6]] ^ crcTables[2][s[5]] ^ crcTables[3][s[4]] ^
			crcTables[4][c>>24] ^ crcTables[5][c>>16&0xFF] ^ crcTables[6][c>>8&0xFF] ^ crcTables[7][c&0xFF]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		c = crcTables[0][byte(c)^s[i]] ^ c>>8
	}
	return ^c
}

// validPrefix reports whether p is a usable prefix: 1 to MaxPrefixLen
// characters of [a-z0-9_], starting with a letter and not ending with '_'.
func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > MaxPrefixLen || p[0] < 'a' || p[0] > 'z' || p[len(p)-1] == '_' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Parse checks that s has the token format — a valid prefix, '_', BodyLen
// base62 characters and the canonical checksum of those characters — without
// any I/O, and returns it as a [Secret]. It does not check the prefix against
// a policy ([Validator.Validate] does). Any failure is [ErrMalformed]; input
// longer than [MaxTokenLen] is rejected before any other work.
func Parse(s string) (Secret, error) {
	if !wellFormed(s) {
		return Secret{}, ErrMalformed
	}
	return newSecret(s), nil
}

// wellFormed is Parse without the allocation, for the hot path.
func wellFormed(s string) bool {
	if len(s) > MaxTokenLen || len(s) < 2+BodyLen+ChecksumLen {
		return false
	}
	sep := len(s) - BodyLen - ChecksumLen - 1
	if s[sep] != '_' || !validPrefix(s[:sep]) {
		return false
	}
	rest := s[sep+1:]
	for i := 0; i < len(rest); i++ {
		if base62Val[rest[i]] == 0xFF {
			return false
		}
	}
	sum := checksum(rest[:BodyLen])
	return subtle.ConstantTimeCompare(sum[:], []byte(rest[BodyLen:])) == 1
}

// generate returns a new token with the given prefix, reading randomness from
// r with rejection sampling (no modulo bias). A failing r yields ErrRandom.
func generate(r io.Reader, prefix string) (Secret, error) {
	var body [BodyLen]byte
	var buf [64]byte
	n := 0
	for n < BodyLen {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return Secret{}, fmt.Errorf("%w: %w", ErrRandom, err)
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keeps b%62 uniform
				continue
			}
			body[n] = base62[b%62]
			n++
			if n == BodyLen {
				break
			}
		}
	}
	sum := checksum(string(body[:]))
	return newSecret(prefix + "_" + string(body[:]) + string(sum[:])), nil
}

// hint returns the display form of a well-formed token: its prefix, the
// first four body characters, "…" and the last four characters.
func hint(s string) string {
	sep := strings.LastIndexByte(s, '_')
	if sep < 0 || len(s)-sep-1 < 8 {
		return "…"
	}
	return s[:sep+5] + "…" + s[len(s)-4:]
}

// Secret is a plaintext token. It exists only in the value [Issuer.Issue],
// [Issuer.Regenerate] or [Issuer.Reveal] returns (or [Parse] builds). It
// redacts itself: every fmt verb, JSON, text marshaling and slog show only its
// hint, and the plaintext sits behind a pointer, so even fmt paths that
// bypass those methods (%p, a Secret in an unexported field) print an address
// at most. [Secret.Reveal] is the one way to the plaintext. Do not keep a
// Secret in a long-lived struct. Compare secrets with Reveal, not ==.
type Secret struct{ p *string }

func newSecret(v string) Secret { return Secret{p: &v} }

// Reveal returns the plaintext token. Show it to its owner once, then drop it.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// Hint returns the display form, e.g. "acme_8f3K…x9Q2".
func (s Secret) Hint() string { return hint(s.Reveal()) }

// IsZero reports whether s holds no token.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns the hint.
func (s Secret) String() string { return s.Hint() }

// GoString returns the hint in Go syntax-like form, for %#v.
func (s Secret) GoString() string { return "apitoken.Secret(" + s.Hint() + ")" }

// Format writes the hint for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, s.Hint())
}

// MarshalJSON encodes the hint as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) {
	return []byte(`"` + s.Hint() + `"`), nil
}

// MarshalText encodes the hint.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Hint()), nil }

// LogValue logs the hint.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Hint()) }

// MinHashKeyLen is the shortest hash or seal key accepted, in bytes.
const MinHashKeyLen = 32

// hasher hashes tokens under a key ring: keys[0] is current, the rest are
// older keys that still validate. With no keys it uses plain SHA-256.
type hasher struct {
	pools []*sync.Pool // one per key; a single unkeyed pool without keys
}

// hashState is one pooled hash. Between uses it holds nothing of the last
// input: see wipe.
type hashState struct {
	h     hash.Hash
	keyed bool
	buf   [MaxTokenLen]byte
	sum   [sha256.Size]byte
}

func newHasher(keys [][]byte) *hasher {
	if len(keys) == 0 {
		return &hasher{pools: []*sync.Pool{{New: func() any { return &hashState{h: sha256.New()} }}}}
	}
	hs := &hasher{}
	for _, k := range keys {
		k := slices.Clone(k)
		hs.pools = append(hs.pools, &sync.Pool{New: func() any {
			h := hmac.New(sha256.New, k)
			h.Reset() // from now on Reset restores a saved keyed state, buffer included
			return &hashState{h: h, keyed: true}
		}})
	}
	return hs
}

// hash returns the hash of s (at most MaxTokenLen bytes) without allocating,
// and wipes the state.
func (st *hashState) hash(s string) Hash {
	n := copy(st.buf[:], s)
	st.h.Write(st.buf[:n])
	clear(st.buf[:n])
	var out Hash
	copy(out[:], st.h.Sum(st.sum[:0]))
	st.wipe()
	return out
}

// wipe resets the hash and overwrites the input it buffered (up to a block,
// the tail of a token), so a pooled state keeps no secret in memory. A keyed
// state's Reset restores the saved state after the key block, buffer
// included; a plain SHA-256 Reset only forgets the buffer's length, so a
// block of zeros overwrites it first.
func (st *hashState) wipe() {
	if !st.keyed {
		st.h.Write(zeroBlock[:])
	}
	st.h.Reset()
}

var zeroBlock [sha256.BlockSize]byte

// keys returns the number of keys in the ring (1 when unkeyed).
func (hs *hasher) keys() int { return len(hs.pools) }

// sum hashes s (at most MaxTokenLen bytes) under key i without allocating.
func (hs *hasher) sum(i int, s string) Hash {
	st := hs.pools[i].Get().(*hashState)
	out := st.hash(s)
	hs.pools[i].Put(st)
	return out
}

// equal compares two hashes in constant time.
func equal(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }
