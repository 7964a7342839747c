package apitoken

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"math"
	mathrand "math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/internal/testservers"
)

// Checklist item 4: the generator's entropy and uniformity. The default run
// draws 10^5 tokens per source, APITOKEN_LONG=1 (scripts/test --long) 10^6.
// Per body position, a χ² test with 61 degrees of freedom must give
// p > 10^-6 at each of the 30 positions, so a correct generator fails a run
// with probability below 30·10^-6 per source; a byte%62 generator (its 8
// first characters 5/4 as likely as the others) fails it at either size
// with p far below 10^-6, which the canary checks.

// genMinP is the smallest per-position p-value a run accepts.
const genMinP = 1e-6

// genSamples returns the sample size: 10^5, or 10^6 under APITOKEN_LONG=1.
func genSamples() int {
	if os.Getenv(testservers.LongEnv) == "1" {
		return 1_000_000
	}
	return 100_000
}

// genStats are the per-position character counts and the duplicates of a
// sample of bodies.
type genStats struct {
	n      int
	counts [BodyLen][len(base62)]int
	dups   int
}

// genSample draws n bodies from next, counting each position's characters
// and the repeated bodies.
func genSample(t *testing.T, n int, next func() ([BodyLen]byte, bool)) *genStats {
	t.Helper()
	st := &genStats{n: n}
	bodies := make([][BodyLen]byte, n)
	for i := range n {
		b, ok := next()
		if !ok {
			t.FailNow()
		}
		for p, c := range b {
			v := base62Val[c]
			if v == 0xFF {
				t.Fatalf("token %d: position %d is not base62", i, p)
			}
			st.counts[p][v]++
		}
		bodies[i] = b
	}
	slices.SortFunc(bodies, func(a, b [BodyLen]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < n; i++ {
		if bodies[i] == bodies[i-1] {
			st.dups++
		}
	}
	return st
}

// chi2 returns each position's χ² statistic against the uniform
// distribution over the 62 characters, and its p-value (61 degrees of
// freedom).
func (st *genStats) chi2() (stat, p [BodyLen]float64) {
	exp := float64(st.n) / float64(len(base62))
	for pos := range BodyLen {
		for _, o := range st.counts[pos] {
			d := float64(o) - exp
			stat[pos] += d * d / exp
		}
		p[pos] = gammaQ(float64(len(base62)-1)/2, stat[pos]/2)
	}
	return stat, p
}

// generated draws bodies from generate(r, "t"), checking each token.
func generated(t *testing.T, r io.Reader) func() ([BodyLen]byte, bool) {
	return func() ([BodyLen]byte, bool) {
		s, err := generate(r, "t")
		if err != nil {
			t.Errorf("generate: %v", err)
			return [BodyLen]byte{}, false
		}
		tok := s.Reveal()
		if len(tok) != len("t_")+BodyLen+ChecksumLen || !wellFormed(tok) {
			t.Errorf("a generated token of %d characters is not well formed", len(tok))
			return [BodyLen]byte{}, false
		}
		var b [BodyLen]byte
		copy(b[:], tok[len("t_"):])
		return b, true
	}
}

// genReader is a reader over a ChaCha8 stream.
type genReader struct{ c *mathrand.ChaCha8 }

func (r genReader) Read(p []byte) (int, error) { return r.c.Read(p) }

// TestGeneratorUniformity replaces a distribution test that used a fixed
// seed and bounds no sample could miss. It draws genSamples() tokens from
// crypto/rand (the Issuer's source) and from a ChaCha8 stream under a fresh
// random seed (logged; APITOKEN_GEN_SEED=<hex> replays it), and wants 0
// duplicate bodies and p > 10^-6 at every position.
func TestGeneratorUniformity(t *testing.T) {
	t.Parallel()
	n := genSamples()
	var seed [32]byte
	if hx := os.Getenv("APITOKEN_GEN_SEED"); hx != "" { // replay a logged seed
		b, err := hex.DecodeString(hx)
		require.NoError(t, err, "APITOKEN_GEN_SEED")
		require.Len(t, b, len(seed), "APITOKEN_GEN_SEED")
		copy(seed[:], b)
	} else {
		_, err := rand.Read(seed[:])
		require.NoError(t, err)
	}
	for _, src := range []struct {
		name string
		r    io.Reader
	}{
		{"crypto/rand", rand.Reader},
		{"chacha8", genReader{mathrand.NewChaCha8(seed)}},
	} {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			if src.name == "chacha8" {
				t.Logf("seed %s (APITOKEN_GEN_SEED replays it)", hex.EncodeToString(seed[:]))
			}
			st := genSample(t, n, generated(t, src.r))
			assert.Zero(t, st.dups, "duplicate bodies among %d", n)
			stat, p := st.chi2()
			for pos := range BodyLen {
				assert.Greaterf(t, p[pos], genMinP, "position %d: χ² = %.1f (61 df), p = %.3g", pos, stat[pos], p[pos])
			}
			t.Logf("%d tokens, %d duplicates; χ² (61 df) per position from %.1f to %.1f, smallest p %.3g (bound %g)",
				n, st.dups, slices.Min(stat[:]), slices.Max(stat[:]), slices.Min(p[:]), genMinP)
		})
	}
	// The canary: a byte%62 generator, with its 4/256 bias, must fail the
	// same bound at the same size.
	t.Run("canary: byte%62", func(t *testing.T) {
		t.Parallel()
		buf := make([]byte, BodyLen)
		st := genSample(t, n, func() ([BodyLen]byte, bool) {
			_, err := rand.Read(buf)
			var b [BodyLen]byte
			for i, x := range buf {
				b[i] = base62[x%62]
			}
			if err != nil {
				t.Errorf("crypto/rand: %v", err)
			}
			return b, err == nil
		})
		_, p := st.chi2()
		assert.Less(t, slices.Max(p[:]), genMinP, "a biased generator passed the χ² bound at some position")
		t.Logf("byte%%62: largest p over the 30 positions %.3g", slices.Max(p[:]))
	})
}

// TestGeneratorEntropy: the body carries at least 128 bits (30 base62
// characters: 178.6), and the services draw from crypto/rand by default.
func TestGeneratorEntropy(t *testing.T) {
	t.Parallel()
	bits := BodyLen * math.Log2(float64(len(base62)))
	assert.GreaterOrEqual(t, bits, 128.0, "bits per body")
	assert.Equal(t, 62, len(base62))
	assert.True(t, newBase().rand == rand.Reader, "the default random source is not crypto/rand.Reader")
	t.Logf("%d base62 characters: %.1f bits", BodyLen, bits)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x): the
// χ² survival function with 2a degrees of freedom at 2x. It uses the series
// of P below a+1 and Lentz's continued fraction of Q above (Numerical
// Recipes §6.2).
func gammaQ(a, x float64) float64 {
	if x <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1.0; n < 1000; n++ {
			term *= x / (a + n)
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-16 {
				break
			}
		}
		return 1 - sum*front
	}
	const tiny = 1e-300
	b := x + 1 - a
	c, d := 1/tiny, 1/b
	h := d
	for i := 1.0; i < 1000; i++ {
		an := -i * (i - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return front * h
}

// TestGammaQ checks gammaQ against χ² survival values with 61 degrees of
// freedom computed with mpmath (30 digits), and the closed form of 2
// degrees of freedom, exp(-x/2).
func TestGammaQ(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ chi2, want float64 }{
		{40, 0.982793001558506859889402221279},
		{61, 0.4759169119335498700432581982},
		{100, 0.00121371888698878459021843946442},
		{128.524216871582725656960886347, 1e-6}, // the bound's critical value
		{130, 0.000000663762477831255168237209774314},
		{200, 1.0879251737280540056356826048e-16},
	} {
		got := gammaQ(30.5, tt.chi2/2)
		assert.InEpsilonf(t, tt.want, got, 1e-9, "χ² survival at %g, 61 df", tt.chi2)
	}
	for _, x := range []float64{0.1, 1, 3, 10, 50} {
		assert.InEpsilonf(t, math.Exp(-x/2), gammaQ(1, x/2), 1e-12, "χ² survival at %g, 2 df", x)
	}
}
