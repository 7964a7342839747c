package apitoken

import (
	"crypto/subtle"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"strings"
)

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
// [Issuer.Regenerate] or [Issuer.Recover] returns (or [Parse] builds). It
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
