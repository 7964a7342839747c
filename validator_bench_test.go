package apitoken_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/benchtokens"
	"golang.org/x/time/rate"
)

var benchKey = []byte("bench-key-bench-key-bench-key-32")

// benchTokens returns n issued tokens behind a Validator (memstore, local
// limiter with a limit that never denies), shared with httpauth's
// benchmarks through internal/benchtokens.
func benchTokens(b *testing.B, n int) *benchtokens.Set {
	return benchtokens.Get(b, n, benchtokens.Config{Policy: testPolicy(), Spec: orgSpec(), HashKey: benchKey, Request: readDev})
}

type floorRecord struct {
	expires time.Time
	lim     *rate.Limiter
}

// benchShapes runs one validation function over 1 and 1,000,000 tokens, in
// a fixed pseudo-random order, serially and in parallel: prepare returns,
// for a set, the function that reports whether a token passed (it runs
// before the timer starts).
func benchShapes(b *testing.B, prepare func(s *benchtokens.Set) func(presented string) bool) {
	for _, n := range []int{1, 1_000_000} {
		ord := benchtokens.Order(n)
		b.Run("tokens="+strconv.Itoa(n)+"/serial", func(b *testing.B) {
			s := benchTokens(b, n)
			validate := prepare(s)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if !validate(s.Secrets[ord[i&0xFFFF]]) {
					b.Fatal("token rejected")
				}
				i++
			}
		})
		b.Run("tokens="+strconv.Itoa(n)+"/parallel", func(b *testing.B) {
			s := benchTokens(b, n)
			validate := prepare(s)
			b.ReportAllocs()
			var seed atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					if !validate(s.Secrets[ord[i&0xFFFF]]) {
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
	benchShapes(b, func(s *benchtokens.Set) func(string) bool {
		return func(presented string) bool {
			_, err := s.Validator.Validate(ctx, presented, readDev)
			return err == nil
		}
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
	floors := map[*benchtokens.Set]map[apitoken.Hash]*floorRecord{} // the same tokens in a bare map keyed by their HMAC
	benchShapes(b, func(s *benchtokens.Set) func(string) bool {
		floor := floors[s]
		if floor == nil {
			floor = make(map[apitoken.Hash]*floorRecord, len(s.Tokens))
			for _, tok := range s.Tokens {
				floor[tok.Hash] = &floorRecord{expires: tok.ExpiresAt, lim: rate.NewLimiter(1e9, 1e9)}
			}
			floors[s] = floor
		}
		return func(presented string) bool {
			if _, err := apitoken.Parse(presented); err != nil {
				return false
			}
			st := pool.Get().(*state)
			st.h.Reset()
			st.h.Write(st.buf[:copy(st.buf[:], presented)])
			rec := floor[apitoken.Hash(st.h.Sum(st.sum[:0]))]
			pool.Put(st)
			now := time.Now()
			return rec != nil && now.Before(rec.expires) && rec.lim.AllowN(now, 1)
		}
	})
}

// BenchmarkParse: format and checksum check only. Target: 0 allocs/op.
func BenchmarkParse(b *testing.B) {
	s := benchTokens(b, 1).Secrets[0]
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
	b1 := []byte(s.Secrets[0])
	b1[len(b1)-1] ^= 1
	bad := string(b1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Validator.Validate(ctx, bad, readDev); err == nil {
			b.Fatal("typo accepted")
		}
	}
}
