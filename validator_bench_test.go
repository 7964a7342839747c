package apitoken_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
	"golang.org/x/time/rate"
)

var benchKey = []byte("bench-key-bench-key-bench-key-32")

// benchSet is n issued tokens behind a Validator (memstore, local limiter
// with a limit that never denies) and, for the floor, the same tokens in a
// bare map keyed by their HMAC.
type benchSet struct {
	v       *apitoken.Validator
	secrets []string
	floor   map[[32]byte]*floorRecord
}

type floorRecord struct {
	id      string
	expires time.Time
	lim     *rate.Limiter
}

var (
	benchMu   sync.Mutex
	benchSets = map[int]*benchSet{}
)

func benchTokens(b *testing.B, n int) *benchSet {
	benchMu.Lock()
	defer benchMu.Unlock()
	if s := benchSets[n]; s != nil {
		return s
	}
	b.Helper()
	ctx := context.Background()
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: 1e9, Burst: 1e9}
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, pol, apitoken.WithHashKeys(benchKey))
	if err != nil {
		b.Fatal(err)
	}
	v, err := apitoken.NewValidator(store, pol, apitoken.WithHashKeys(benchKey), apitoken.WithLimiter(apitoken.NewLocalLimiter()))
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSet{v: v, secrets: make([]string, n), floor: make(map[[32]byte]*floorRecord, n)}
	spec := orgSpec()
	for i := range n {
		spec.Name = "t" + strconv.Itoa(i)
		sec, tok, err := iss.Issue(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		s.secrets[i] = sec.Reveal()
		s.floor[tok.Hash] = &floorRecord{id: tok.ID, expires: tok.ExpiresAt, lim: rate.NewLimiter(1e9, 1e9)}
		if _, err := v.Validate(ctx, s.secrets[i], readDev); err != nil { // warm the limiter
			b.Fatal(err)
		}
	}
	benchSets[n] = s
	return s
}

// order returns a fixed pseudo-random visiting order over n tokens.
func order(n int) []int32 {
	r := rand.New(rand.NewPCG(1, 2))
	o := make([]int32, 1<<16)
	for i := range o {
		o[i] = int32(r.IntN(n))
	}
	return o
}

// benchShapes runs one validation function over 1 and 1,000,000 tokens, in
// a fixed pseudo-random order, serially and in parallel; validate reports
// whether the token passed.
func benchShapes(b *testing.B, validate func(s *benchSet, presented string) bool) {
	for _, n := range []int{1, 1_000_000} {
		ord := order(n)
		b.Run("tokens="+strconv.Itoa(n)+"/serial", func(b *testing.B) {
			s := benchTokens(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if !validate(s, s.secrets[ord[i&0xFFFF]]) {
					b.Fatal("token rejected")
				}
				i++
			}
		})
		b.Run("tokens="+strconv.Itoa(n)+"/parallel", func(b *testing.B) {
			s := benchTokens(b, n)
			b.ReportAllocs()
			var seed atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					if !validate(s, s.secrets[ord[i&0xFFFF]]) {
						b.Error("token rejected")
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkValidate is the hot path on the memory store with a local limiter:
// parse, HMAC, map lookup, checks, rate limit, last-used note.
// Target: ≤ 1 alloc/op (the Principal) and ≤ 1.5× BenchmarkFloor.
func BenchmarkValidate(b *testing.B) {
	ctx := context.Background()
	benchShapes(b, func(s *benchSet, presented string) bool {
		_, err := s.v.Validate(ctx, presented, readDev)
		return err == nil
	})
}

// BenchmarkFloor is the least any validation of this shape can cost: parse +
// one pooled HMAC-SHA256 + one map lookup + one x/time/rate decision + one
// clock read. Target: 0 allocs/op.
func BenchmarkFloor(b *testing.B) {
	type state struct {
		h   hash.Hash
		buf [apitoken.MaxTokenLen]byte
		sum [32]byte
	}
	pool := sync.Pool{New: func() any { return &state{h: hmac.New(sha256.New, benchKey)} }}
	benchShapes(b, func(s *benchSet, presented string) bool {
		if _, err := apitoken.Parse(presented); err != nil {
			return false
		}
		st := pool.Get().(*state)
		st.h.Reset()
		st.h.Write(st.buf[:copy(st.buf[:], presented)])
		rec := s.floor[[32]byte(st.h.Sum(st.sum[:0]))]
		pool.Put(st)
		now := time.Now()
		return rec != nil && now.Before(rec.expires) && rec.lim.AllowN(now, 1)
	})
}

// BenchmarkParse: format and checksum check only. Target: 0 allocs/op.
func BenchmarkParse(b *testing.B) {
	s := benchTokens(b, 1).secrets[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apitoken.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateMalformed: a typo is rejected without a store call.
// Target: 0 allocs/op.
func BenchmarkValidateMalformed(b *testing.B) {
	s := benchTokens(b, 1)
	b1 := []byte(s.secrets[0])
	b1[len(b1)-1] ^= 1
	bad := string(b1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.v.Validate(ctx, bad, readDev); err == nil {
			b.Fatal("typo accepted")
		}
	}
}
