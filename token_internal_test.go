package apitoken

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"io"
	"math/big"
	mathrand "math/rand/v2"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

// Internal tests of the unexported token algorithms: the base62 CRC32
// checksum, random body generation and hashing. Everything else is tested
// through the public API in package apitoken_test.

// refAlphabet is the base62 alphabet of the token format, written out here
// rather than taken from the package: digits, then upper case, then lower case.
const refAlphabet = "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz"

// refEncode62 is an independent reference encoder: v in base 62 with
// refAlphabet, most significant digit first, left-padded with '0' to six
// digits (62^6 > 2^32, so six always suffice).
func refEncode62(v uint32) string {
	n := new(big.Int).SetUint64(uint64(v))
	base, digit := big.NewInt(62), new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, base, digit)
		out = append([]byte{refAlphabet[digit.Int64()]}, out...)
	}
	return strings.Repeat("0", ChecksumLen-len(out)) + string(out)
}

// refChecksum is the reference checksum of a body: CRC32-IEEE from
// hash/crc32, encoded by refEncode62.
func refChecksum(body string) string { return refEncode62(crc32.ChecksumIEEE([]byte(body))) }

// forgeCRC32 appends four bytes to prefix so that the CRC32-IEEE of the
// result is target (the classic CRC "forging" by working the table back from
// the target register). Tests use it to reach the extreme CRC values 0 and
// 0xFFFFFFFF, and check the result with hash/crc32 before relying on it.
func forgeCRC32(prefix string, target uint32) string {
	tab := crc32.IEEETable
	var idx [4]byte
	reg := ^target
	for k := 3; k >= 0; k-- {
		for i := range 256 {
			if tab[i]>>24 == reg>>24 {
				idx[k] = byte(i)
				reg = (reg ^ tab[i]) << 8
				break
			}
		}
	}
	reg = ^crc32.ChecksumIEEE([]byte(prefix))
	suffix := make([]byte, 4)
	for k := range 4 {
		suffix[k] = byte(reg) ^ idx[k]
		reg = tab[idx[k]] ^ (reg >> 8)
	}
	return prefix + string(suffix)
}

func TestRefEncode62(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    uint32
		want string
	}{
		{0, "000000"},
		{1, "000001"},
		{61, "00000z"},
		{62, "000010"},
		{62*62 - 1, "0000zz"},
		{916132832, "100000"}, // 62^5
		{0xFFFFFFFF, "4gfFC3"},
	}
	for _, tt := range tests {
		if got := refEncode62(tt.v); got != tt.want {
			t.Errorf("refEncode62(%#x) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestForgeCRC32(t *testing.T) {
	t.Parallel()
	for _, target := range []uint32{0, 1, 0xFFFFFFFF, 0xDEADBEEF} {
		for _, prefix := range []string{"", "abc", strings.Repeat("Z", BodyLen)} {
			s := forgeCRC32(prefix, target)
			if got := crc32.ChecksumIEEE([]byte(s)); got != target {
				t.Errorf("crc32(forgeCRC32(%q, %#x)) = %#x, want %#x", prefix, target, got, target)
			}
		}
	}
}

func TestChecksum(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string // "" means "compare with refChecksum only"
	}{
		// Literal vectors computed outside Go (Python zlib.crc32 + base62).
		{"sequential", "0123456789ABCDEFGHIJKLMNOPQRST", "4PMbyp"},
		{"zeros", strings.Repeat("0", BodyLen), "2C8GjS"},
		{"all z", strings.Repeat("z", BodyLen), "4IlJEz"},
		{"lower then digits", "abcdefghijklmnopqrstuvwxyz0123", "2LolCm"},
		{"empty", "", "000000"}, // CRC32 of nothing is 0
		{"crc 0", forgeCRC32("0123456789ABCDEFGHIJKLMNO", 0), "000000"},
		{"crc 0xFFFFFFFF", forgeCRC32("0123456789ABCDEFGHIJKLMNO", 0xFFFFFFFF), "4gfFC3"},
		{"crc 0xFFFFFFFF short", forgeCRC32("", 0xFFFFFFFF), "4gfFC3"},
		{"crc 1", forgeCRC32("x", 1), "000001"},
		{"crc 61", forgeCRC32("x", 61), "00000z"},
		{"crc 62", forgeCRC32("x", 62), "000010"},
		{"non-ASCII bytes", "\x00\xff\x80é", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := checksum(tt.body)
			if ref := refChecksum(tt.body); string(got[:]) != ref {
				t.Errorf("checksum(%q) = %q, want %q (reference)", tt.body, got[:], ref)
			}
			if tt.want != "" && string(got[:]) != tt.want {
				t.Errorf("checksum(%q) = %q, want %q", tt.body, got[:], tt.want)
			}
		})
	}
}

func TestChecksumMatchesReferenceOnRandomBodies(t *testing.T) {
	t.Parallel()
	rng := mathrand.New(mathrand.NewChaCha8([32]byte{1}))
	body := make([]byte, BodyLen)
	for range 5000 {
		for i := range body {
			body[i] = refAlphabet[rng.IntN(len(refAlphabet))]
		}
		got := checksum(string(body))
		if want := refChecksum(string(body)); string(got[:]) != want {
			t.Fatalf("checksum(%q) = %q, want %q", body, got[:], want)
		}
	}
}

// refFailingReader fails every read.
type refFailingReader struct{ err error }

func (r refFailingReader) Read([]byte) (int, error) { return 0, r.err }

// refRepeatReader returns b forever.
type refRepeatReader byte

func (r refRepeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestGenerateRandomFailure(t *testing.T) {
	t.Parallel()
	errBroken := errors.New("entropy source on fire")
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"failing reader", refFailingReader{errBroken}},
		{"empty reader", bytes.NewReader(nil)},
		{"short reader", bytes.NewReader(bytes.Repeat([]byte{7}, 10))},
		// A source that yields only rejected bytes, then ends, must fail
		// rather than loop or pad the body.
		{"only rejected bytes", bytes.NewReader(bytes.Repeat([]byte{0xFF}, 4096))},
		{"rejected then short", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{250}, 64)), bytes.NewReader([]byte{1, 2, 3}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := generate(tt.r, "acme")
			if !errors.Is(err, ErrRandom) {
				t.Errorf("generate(%s) error = %v, want %v", tt.name, err, ErrRandom)
			}
			if !s.IsZero() {
				t.Errorf("generate(%s) = %q, want the zero Secret", tt.name, s.Reveal())
			}
		})
	}
	if _, err := generate(refFailingReader{errBroken}, "acme"); !errors.Is(err, errBroken) {
		t.Errorf("generate(failing reader) error = %v, want it to wrap %v", err, errBroken)
	}
}

func TestGenerateRejectionSampling(t *testing.T) {
	t.Parallel()
	// The first 64 bytes are all 0xFF (all rejected); then come the eight
	// rejected values 248..255, then 30 accepted bytes j + 62*(j%4), which
	// all map to refAlphabet[j]: byte values 62 apart are the same digit.
	var in []byte
	in = append(in, bytes.Repeat([]byte{0xFF}, 64)...)
	for b := 248; b <= 255; b++ {
		in = append(in, byte(b))
	}
	for j := range BodyLen {
		in = append(in, byte(j+62*(j%4)))
	}
	in = append(in, bytes.Repeat([]byte{0xFF}, 256)...)

	s, err := generate(bytes.NewReader(in), "acme")
	if err != nil {
		t.Fatalf("generate() error = %v", err)
	}
	const body = "0123456789ABCDEFGHIJKLMNOPQRST"
	if want := "acme_" + body + "4PMbyp"; s.Reveal() != want {
		t.Errorf("generate() = %q, want %q", s.Reveal(), want)
	}
	if _, err := Parse(s.Reveal()); err != nil {
		t.Errorf("Parse(%q) = %v, want nil", s.Reveal(), err)
	}
}

func TestGenerateByteMapping(t *testing.T) {
	t.Parallel()
	// Every byte value: 0..247 map to refAlphabet[b%62], 248..255 are
	// rejected. Over the accepted values each character occurs exactly four
	// times, which is why the cut is at 248 = 4*62 (no modulo bias).
	counts := make(map[byte]int)
	for b := range 248 {
		s, err := generate(refRepeatReader(b), "t")
		if err != nil {
			t.Fatalf("generate(repeat %d) error = %v", b, err)
		}
		c := refAlphabet[b%62]
		want := "t_" + strings.Repeat(string(c), BodyLen)
		if got := s.Reveal()[:len(want)]; got != want {
			t.Errorf("generate(repeat %d) body = %q, want %q", b, got, want)
		}
		counts[c]++
	}
	// 248..255 are never accepted: a source of nothing else, once it runs
	// dry, makes generate fail.
	for b := 248; b <= 255; b++ {
		s, err := generate(bytes.NewReader(bytes.Repeat([]byte{byte(b)}, 1024)), "t")
		if !errors.Is(err, ErrRandom) || !s.IsZero() {
			t.Errorf("generate(only %d) = %q, %v; want the zero Secret, %v (byte must be rejected)", b, s.Reveal(), err, ErrRandom)
		}
	}
	for i := range len(refAlphabet) {
		if c := refAlphabet[i]; counts[c] != 4 {
			t.Errorf("character %q is produced by %d byte values, want 4", c, counts[c])
		}
	}
}

func TestGenerateCryptoRand(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 200 {
		s, err := generate(rand.Reader, "my_app")
		if err != nil {
			t.Fatalf("generate(crypto/rand) error = %v", err)
		}
		if len(s.Reveal()) != len("my_app_")+BodyLen+ChecksumLen || !strings.HasPrefix(s.Reveal(), "my_app_") {
			t.Fatalf("generate(crypto/rand) = %q, want my_app_ + %d characters", s.Reveal(), BodyLen+ChecksumLen)
		}
		if want := refChecksum(s.Reveal()[7 : 7+BodyLen]); s.Reveal()[7+BodyLen:] != want {
			t.Errorf("generate() checksum of %q = %q, want %q", s.Reveal(), s.Reveal()[7+BodyLen:], want)
		}
		if seen[s.Reveal()] {
			t.Fatalf("generate() repeated %q", s.Reveal())
		}
		seen[s.Reveal()] = true
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"acme_0123456789ABCDEFGHIJKLMNOPQRST4PMbyp", "acme_0123…Mbyp"},
		{"my_app_0123456789ABCDEFGHIJKLMNOPQRST4PMbyp", "my_app_0123…Mbyp"},
		{"acme_12345678", "acme_1234…5678"},
		{"acme_1234567", "…"}, // too short to hint at without showing it whole
		{"no-separator", "…"},
		{"", "…"},
	}
	for _, tt := range tests {
		if got := hint(tt.in); got != tt.want {
			t.Errorf("hint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var refHashInputs = []string{
	"",
	"acme_0123456789ABCDEFGHIJKLMNOPQRST4PMbyp",
	"tok_" + strings.Repeat("z", BodyLen) + "4IlJEz",
	strings.Repeat("x", MaxTokenLen),
}

func refHMAC(key []byte, s string) Hash {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return Hash(m.Sum(nil))
}

func TestHasherUnkeyedIsSHA256(t *testing.T) {
	t.Parallel()
	for _, keys := range [][][]byte{nil, {}} {
		hs := newHasher(keys)
		if hs.keys() != 1 {
			t.Errorf("newHasher(%v).keys() = %d, want 1", keys, hs.keys())
		}
		for range 2 { // the second round reuses pooled states
			for _, s := range refHashInputs {
				if got, want := hs.sum(0, s), Hash(sha256.Sum256([]byte(s))); got != want {
					t.Errorf("sum(0, %.20q) = %x, want SHA-256 %x", s, got, want)
				}
			}
		}
	}
}

func TestHasherKeyedIsHMAC(t *testing.T) {
	t.Parallel()
	k0 := bytes.Repeat([]byte{0x11}, MinHashKeyLen)
	k1 := bytes.Repeat([]byte{0x22}, MinHashKeyLen+8)
	keys := [][]byte{k0, k1}
	hs := newHasher(keys)
	// The hasher keeps its own copies of the keys.
	keys[0][0], keys[1][0] = 0xEE, 0xEE
	k0 = bytes.Repeat([]byte{0x11}, MinHashKeyLen)
	k1 = bytes.Repeat([]byte{0x22}, MinHashKeyLen+8)

	if hs.keys() != 2 {
		t.Fatalf("keys() = %d, want 2", hs.keys())
	}
	for range 2 {
		for _, s := range refHashInputs {
			h0, h1 := hs.sum(0, s), hs.sum(1, s)
			if want := refHMAC(k0, s); h0 != want {
				t.Errorf("sum(0, %.20q) = %x, want HMAC-SHA256 under key 0 %x", s, h0, want)
			}
			if want := refHMAC(k1, s); h1 != want {
				t.Errorf("sum(1, %.20q) = %x, want HMAC-SHA256 under key 1 %x", s, h1, want)
			}
			if h0 == h1 {
				t.Errorf("sum(0, %.20q) == sum(1, …): keys must give different hashes", s)
			}
			if h0 == Hash(sha256.Sum256([]byte(s))) {
				t.Errorf("sum(0, %.20q) equals the unkeyed SHA-256", s)
			}
		}
	}
}

func TestHasherConcurrent(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0x5A}, MinHashKeyLen)
	hs := newHasher([][]byte{key})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s := refHashInputs[(g+i)%len(refHashInputs)]
				if got, want := hs.sum(0, s), refHMAC(key, s); got != want {
					t.Errorf("concurrent sum(0, %.20q) = %x, want %x", s, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEqual(t *testing.T) {
	t.Parallel()
	a := Hash(sha256.Sum256([]byte("a")))
	b := a
	b[len(b)-1] ^= 1
	if !equal(a, a) {
		t.Errorf("equal(a, a) = false, want true")
	}
	if equal(a, b) {
		t.Errorf("equal(a, b) = true for hashes differing in one bit, want false")
	}
}

// refRaceEnabled reports whether the test binary was built with -race, under
// which sync.Pool deliberately drops items and allocation counts mean nothing.
func refRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

func TestHasherSumAllocs(t *testing.T) {
	if refRaceEnabled() {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items)")
	}
	tok := "acme_0123456789ABCDEFGHIJKLMNOPQRST4PMbyp"
	for _, tt := range []struct {
		name string
		keys [][]byte
	}{
		{"sha256", nil},
		{"hmac", [][]byte{bytes.Repeat([]byte{1}, MinHashKeyLen), bytes.Repeat([]byte{2}, MinHashKeyLen)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHasher(tt.keys)
			var sink Hash
			for i := range hs.keys() {
				if n := testing.AllocsPerRun(1000, func() { sink = hs.sum(i, tok) }); n != 0 {
					t.Errorf("sum(%d, token) allocates %v times per run, want 0", i, n)
				}
			}
			_ = sink
		})
	}
}

// TestHashStateForgetsInput: after hashing a token, a pooled hash state
// holds none of its bytes, keyed or not, fresh or reused. It searches every
// byte the state reaches, through pointers and interfaces, so it does not
// depend on the hash's field names.
func TestHashStateForgetsInput(t *testing.T) {
	token := "acme_" + strings.Repeat("Zq7", 10) + "K9x2Wp"
	for _, keys := range [][][]byte{nil, {[]byte("key-0123456789abcdef0123456789ab")}} {
		st := newHasher(keys).pools[0].New().(*hashState)
		for use := range 2 {
			want := hmacOrSHA(keys, token)
			if got := st.hash(token); got != want {
				t.Fatalf("keyed=%v use %d: hash = %x, want %x", keys != nil, use, got, want)
			}
			if reaches(reflect.ValueOf(st), []byte(token[len(token)-12:]), map[uintptr]bool{}) {
				t.Errorf("keyed=%v use %d: the hash state still holds the token's tail", keys != nil, use)
			}
		}
	}
}

func hmacOrSHA(keys [][]byte, s string) Hash {
	if keys == nil {
		return sha256.Sum256([]byte(s))
	}
	m := hmac.New(sha256.New, keys[0])
	m.Write([]byte(s))
	return Hash(m.Sum(nil))
}

// reaches reports whether the bytes of v, or of anything it points to,
// contain needle.
func reaches(v reflect.Value, needle []byte, seen map[uintptr]bool) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return false
		}
		if v.Kind() == reflect.Pointer {
			if seen[v.Pointer()] {
				return false
			}
			seen[v.Pointer()] = true
		}
		return reaches(v.Elem(), needle, seen)
	case reflect.Struct:
		for i := range v.NumField() {
			if reaches(v.Field(i), needle, seen) {
				return true
			}
		}
	case reflect.Array, reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			return bytes.Contains(b, needle)
		}
		for i := range v.Len() {
			if reaches(v.Index(i), needle, seen) {
				return true
			}
		}
	}
	return false
}
