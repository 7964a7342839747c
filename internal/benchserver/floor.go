package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floor is the least a token middleware with the same duties does for each
// request, written as plainly and cheaply as possible: read the Bearer
// token, HMAC-SHA256 it with a pooled state, find the hash in a map, take
// one request from the token's GCRA bucket (one int64, compare-and-swap),
// set the two RateLimit headers, and hand the handler a context carrying
// the caller. No checksum, expiry, IP, access or last-used work, no
// Principal: any real middleware does more. scripts/bench-wrk FLOOR=1
// measures it next to the middleware, to show what the duties alone cost.
type floor struct {
	key    []byte
	hashes sync.Pool
	ids    map[[sha256.Size]byte]int32
	tat    []atomic.Int64 // per token: GCRA theoretical arrival time, Unix ns
	next   http.Handler
}

type floorKey struct{}

type floorHash struct {
	h   hash.Hash
	buf [256]byte
}

// floorInterval and floorTolerance (ns) are the benchserver's limit, 1e9
// requests a second with a burst of 1e9, in GCRA terms. The floor limits
// even when the benchserver runs with -limit=false.
const floorInterval, floorTolerance = 1, int64(time.Second)

func newFloor(key []byte, n int) *floor {
	f := &floor{key: key, ids: make(map[[sha256.Size]byte]int32, n), tat: make([]atomic.Int64, 0, n)}
	f.hashes.New = func() any { return &floorHash{h: hmac.New(sha256.New, f.key)} }
	return f
}

func (f *floor) sum(token string) (out [sha256.Size]byte) {
	st := f.hashes.Get().(*floorHash)
	st.h.Reset()
	st.h.Write(st.buf[:copy(st.buf[:], token)])
	st.h.Sum(out[:0])
	f.hashes.Put(st)
	return out
}

// add registers a token.
func (f *floor) add(token string) {
	f.ids[f.sum(token)] = int32(len(f.tat))
	f.tat = append(f.tat, atomic.Int64{})
}

var floorPolicy = []string{`"default";q=1000000000;w=1`}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header["Authorization"]
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	id, ok := f.ids[f.sum(auth[0][len("Bearer "):])]
	if !ok {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	now := time.Now().UnixNano()
	var tat int64
	for {
		old := f.tat[id].Load()
		tat = max(old, now) + floorInterval
		if tat-now > floorTolerance {
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		if f.tat[id].CompareAndSwap(old, tat) {
			break
		}
	}
	remaining := (now + floorTolerance - tat) / floorInterval
	h := w.Header()
	h["Ratelimit-Policy"] = floorPolicy
	h["Ratelimit"] = []string{`"default";r=` + strconv.FormatInt(remaining, 10) + ";t=" + strconv.FormatInt((tat-now+int64(time.Second)-1)/int64(time.Second), 10)}
	f.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorKey{}, id)))
}
