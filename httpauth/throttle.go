package httpauth

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken"
)

// The default budget of failed authentications per client ([WithFailureLimit]):
// 100 at once, then one a second (3,600 an hour). A client that has spent it
// is answered 429 without a store lookup until the budget refills.
const (
	DefaultFailureBurst               = 100
	DefaultFailureRate  apitoken.Rate = 1
)

// MaxFailureClients is the most clients whose failed authentications the
// middleware tracks at once (about 40 bytes each, so at most about 3 MB).
// A client whose budget is full again is forgotten at the next sweep; when
// the table is full, the client closest to a full budget is forgotten
// first, so a flood from many addresses costs each forgotten client at
// most one fresh burst, never the memory bound.
const MaxFailureClients = 1 << 16

// throttle keeps a budget of failed authentications per client: GCRA (the
// same token bucket as [apitoken.LocalLimiter]) over 64 sharded maps keyed
// by the client's address (IPv6 by /64, unknown addresses sharing one key).
// Its keys are fixed-size arrays rather than LocalLimiter's strings, so the
// check every request makes allocates nothing, and it can read a budget
// without spending it.
type throttle struct {
	interval  int64 // ns per failure
	tolerance int64 // ns of a full bucket (burst × interval)
	seed      maphash.Seed
	shards    [throttleShards]throttleShard
}

const (
	throttleShards = 64
	shardCap       = MaxFailureClients / throttleShards
	minSweep       = 64
	sweepPeriod    = time.Minute
)

type throttleShard struct {
	n         atomic.Int32 // len(tat), read without mu: 0 means nothing to check
	mu        sync.Mutex
	tat       map[clientKey]int64 // theoretical arrival time, Unix ns
	sweepAt   int                 // sweep when a new key makes len(tat) reach this
	lastSweep int64
	_         [24]byte // keep shards on separate cache lines
}

// clientKey is a client's budget: its IPv4 address, or its IPv6 /64 (as
// 16 bytes), or unknownClient.
type clientKey [16]byte

// unknownClient is the key of every request whose client address is
// unknown (ff…: multicast, never a source address).
var unknownClient = clientKey{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff}

func keyOf(a netip.Addr) clientKey {
	switch {
	case !a.IsValid():
		return unknownClient
	case a.Is6():
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a.As16()
}

func newThrottle(l apitoken.Limit) *throttle {
	interval := int64(float64(time.Second) / float64(l.Rate))
	t := &throttle{interval: interval, tolerance: interval * int64(l.Burst), seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].tat = make(map[clientKey]int64)
		t.shards[i].sweepAt = minSweep
	}
	return t
}

func (t *throttle) shard(k clientKey) *throttleShard {
	return &t.shards[maphash.Comparable(t.seed, k)%throttleShards]
}

// wait returns how long the client at a must wait before its next failed
// authentication fits its budget: zero if it fits now. It spends nothing,
// and reads the clock only for a client with failures on record.
func (t *throttle) wait(a netip.Addr, clock func() time.Time) time.Duration {
	k := keyOf(a)
	s := t.shard(k)
	if s.n.Load() == 0 {
		return 0
	}
	s.mu.Lock()
	tat, ok := s.tat[k]
	s.mu.Unlock()
	if !ok {
		return 0
	}
	now := clock().UnixNano()
	if allowAt := tat + t.interval - t.tolerance; now < allowAt {
		return time.Duration(allowAt - now)
	}
	return 0
}

// fail spends one failed authentication of the client at a at now.
// Concurrent requests that all passed wait may overdraw the budget; the
// overdraft is waited off before the next one passes.
func (t *throttle) fail(a netip.Addr, now time.Time) {
	k := keyOf(a)
	s := t.shard(k)
	ns := now.UnixNano()
	s.mu.Lock()
	tat, ok := s.tat[k]
	if !ok && (len(s.tat)+1 >= s.sweepAt || ns-s.lastSweep > int64(sweepPeriod)) {
		s.sweep(ns)
	}
	s.tat[k] = max(tat, ns) + t.interval
	s.n.Store(int32(len(s.tat)))
	s.mu.Unlock()
}

// sweep drops the clients whose budgets are full at ns, moving the others
// into a new map (so the memory of a past flood is given back); if the
// shard is still full, it forgets the client closest to a full budget. The
// caller holds s.mu.
func (s *throttleShard) sweep(ns int64) {
	kept := make(map[clientKey]int64, len(s.tat))
	var oldest clientKey
	oldestTAT := int64(-1)
	for k, tat := range s.tat {
		if tat > ns {
			kept[k] = tat
			if oldestTAT < 0 || tat < oldestTAT {
				oldest, oldestTAT = k, tat
			}
		}
	}
	if len(kept) >= shardCap {
		delete(kept, oldest)
	}
	s.tat = kept
	s.sweepAt = min(max(2*len(kept), minSweep), shardCap)
	s.lastSweep = ns
}
