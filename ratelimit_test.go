package apitoken_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"golang.org/x/time/rate"
)

func TestLocalLimiterBurstAndRefill(t *testing.T) {
	ctx := context.Background()
	l := apitoken.NewLocalLimiter()
	limit := apitoken.Limit{Rate: 10, Burst: 3} // one request per 100ms
	key := apitoken.TokenKey("t1")
	for i := range 3 {
		d, err := l.Allow(ctx, key, limit, t0)
		if err != nil || !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("request %d: %+v, %v; want allowed with %d remaining", i, d, err, 2-i)
		}
	}
	d, _ := l.Allow(ctx, key, limit, t0)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond || d.Remaining != 0 || !d.ResetAt.Equal(t0.Add(300*time.Millisecond)) {
		t.Fatalf("4th request = %+v; want denied, retry after 100ms, reset at +300ms", d)
	}
	if d, _ := l.Allow(ctx, key, limit, t0.Add(99*time.Millisecond)); d.Allowed {
		t.Errorf("at +99ms: allowed, want denied")
	}
	if d, _ := l.Allow(ctx, key, limit, t0.Add(100*time.Millisecond)); !d.Allowed {
		t.Errorf("at +100ms: denied, want allowed")
	}
	// Other keys are independent.
	if d, _ := l.Allow(ctx, apitoken.UserKey("t1"), limit, t0); !d.Allowed {
		t.Errorf("user key with the same ID: denied, want its own budget")
	}
	if _, err := l.Allow(ctx, key, apitoken.Limit{}, t0); err == nil {
		t.Errorf("zero limit: nil error, want error")
	}
	if _, err := l.Allow(ctx, apitoken.LimitKey{ID: "t1"}, limit, t0); err == nil {
		t.Errorf("key of the zero Kind: nil error, want error")
	}
	if d, err := l.AllowN(apitoken.TokenKey("t2"), limit, t0, 4); err != nil || d.Allowed {
		t.Errorf("AllowN(4) over burst 3 = %+v, %v; want denied", d, err)
	}
}

// TestLocalLimiterMatchesTokenBucket: GCRA decides exactly as a token
// bucket (x/time/rate) over a random request sequence.
func TestLocalLimiterMatchesTokenBucket(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	for _, limit := range []apitoken.Limit{{Rate: 10, Burst: 1}, {Rate: 10, Burst: 5}, {Rate: 0.5, Burst: 3}, {Rate: 1000, Burst: 50}} {
		l := apitoken.NewLocalLimiter()
		bucket := rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst)
		now := t0
		for i := range 5000 {
			now = now.Add(time.Duration(r.IntN(int(2*float64(time.Second)/float64(limit.Rate)/1e6))) * time.Millisecond)
			d, err := l.Allow(ctx, apitoken.TokenKey("k"), limit, now)
			if err != nil {
				t.Fatal(err)
			}
			if want := bucket.AllowN(now, 1); d.Allowed != want {
				t.Fatalf("limit %+v, request %d at %v: allowed %v, token bucket says %v", limit, i, now.Sub(t0), d.Allowed, want)
			}
		}
	}
}

func TestLocalLimiterConcurrentExact(t *testing.T) {
	ctx := context.Background()
	l := apitoken.NewLocalLimiter()
	limit := apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 100}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if d, _ := l.Allow(ctx, apitoken.UserKey("u"), limit, t0); d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Errorf("400 concurrent requests over burst 100: %d allowed, want 100", got)
	}
}

// TestLocalLimiterForgetsIdleKeys: a million keys seen once do not stay
// resident once their buckets are full again.
func TestLocalLimiterForgetsIdleKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	ctx := context.Background()
	l := apitoken.NewLocalLimiter()
	limit := apitoken.Limit{Rate: 1, Burst: 10}
	before := liveHeap()
	for i := range 1_000_000 {
		if _, err := l.Allow(ctx, apitoken.TokenKey(strconv.Itoa(i)), limit, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n < 500_000 {
		t.Fatalf("keys held while their buckets refill: %d, want them all kept (state)", n)
	}
	// Ten seconds on every bucket is full; new traffic sweeps.
	later := t0.Add(10 * time.Minute)
	for i := range 10_000 {
		l.Allow(ctx, apitoken.UserKey("new"+strconv.Itoa(i)), limit, later)
	}
	if n := l.Len(); n > 10_000 {
		t.Errorf("keys held after the old ones refilled and new traffic came: %d, want ≤ 10000", n)
	}
	if n := l.Sweep(later.Add(time.Minute)); n != 0 {
		t.Errorf("Sweep = %d keys left, want 0", n)
	}
	// The memory goes too: a Go map keeps the room of deleted keys, so a
	// limiter that only deleted would still hold tens of MB here.
	if grown := liveHeap() - before; grown > 4<<20 {
		t.Errorf("heap after a million keys came and went: %d MB more than before, want < 4", grown>>20)
	}
	runtime.KeepAlive(l)
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkLimiter compares LocalLimiter.Allow with a bare x/time/rate
// limiter. Target: ≤ 1.5× the bare limiter, 0 allocs/op.
func BenchmarkLimiter(b *testing.B) {
	limit := apitoken.Limit{Rate: 1, Burst: 1e9} // never denies, never idle
	bare := rate.Limit(limit.Rate)
	keys := make([]apitoken.LimitKey, 100_000)
	for i := range keys {
		keys[i] = apitoken.TokenKey("0197a1b2-c3d4-7e5f-8a9b-" + strconv.Itoa(100000000000+i))
	}
	b.Run("bare-x-time-rate/serial", func(b *testing.B) {
		lim := rate.NewLimiter(bare, limit.Burst)
		b.ReportAllocs()
		for b.Loop() {
			lim.AllowN(time.Now(), 1)
		}
	})
	b.Run("bare-x-time-rate/parallel", func(b *testing.B) {
		lim := rate.NewLimiter(bare, limit.Burst)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				lim.AllowN(time.Now(), 1)
			}
		})
	})
	for _, n := range []int{1, len(keys)} {
		b.Run("local/keys="+strconv.Itoa(n)+"/serial", func(b *testing.B) {
			l := apitoken.NewLocalLimiter()
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(ctx, keys[i%n], limit, time.Now())
				i++
			}
		})
		b.Run("local/keys="+strconv.Itoa(n)+"/parallel", func(b *testing.B) {
			l := apitoken.NewLocalLimiter()
			var seed atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				i := int(seed.Add(7919))
				for pb.Next() {
					l.Allow(ctx, keys[i%n], limit, time.Now())
					i++
				}
			})
		})
	}
	// A million keys in random order, each refilled before it comes back (a
	// limit never reached, as under load over a million tokens): every call
	// adds a key, and sweeps drop them.
	b.Run("local/keys-seen-once/serial", func(b *testing.B) {
		once := make([]apitoken.LimitKey, 1_000_000)
		for i, j := range rand.Perm(len(once)) {
			once[i] = apitoken.TokenKey("0197a1b2-c3d4-7e5f-8a9b-" + strconv.Itoa(100000000000+j))
		}
		// Give the memory back, so that it does not slow the benchmarks
		// run after this one in the same process.
		b.Cleanup(debug.FreeOSMemory)
		l := apitoken.NewLocalLimiter()
		ctx := context.Background()
		fast := apitoken.Limit{Rate: 1e9, Burst: 1}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(ctx, once[i%len(once)], fast, time.Now())
			i++
		}
	})
}
