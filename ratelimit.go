package apitoken

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"
)

// Rate is a number of events per second.
type Rate float64

// Per returns the Rate of n events per period d.
func Per(n int, d time.Duration) Rate {
	if d <= 0 {
		return 0
	}
	return Rate(float64(n) / d.Seconds())
}

// Limit is a token-bucket rate limit: Burst requests at once, refilled at
// Rate. The zero Limit means "no limit".
type Limit struct {
	Rate  Rate `json:"rate"`  // events per second
	Burst int  `json:"burst"` // bucket size, at least 1 when Rate > 0
}

// String describes l in words: "no limit", or for example "10/s, burst
// 20" or "2/h, burst 1" (per second, minute, hour or day: the first unit
// that gives at least 1).
func (l Limit) String() string {
	if l.IsZero() {
		return "no limit"
	}
	n, unit := float64(l.Rate), "s"
	for _, u := range []struct {
		name string
		secs float64
	}{{"min", 60}, {"h", 3600}, {"day", 86400}} {
		if n >= 1 {
			break
		}
		n, unit = float64(l.Rate)*u.secs, u.name
	}
	return strconv.FormatFloat(n, 'g', 4, 64) + "/" + unit + ", burst " + strconv.Itoa(l.Burst)
}

// IsZero reports whether l means "no limit".
func (l Limit) IsZero() bool { return l.Rate == 0 && l.Burst == 0 }

func (l Limit) validate(field string) error {
	if l.IsZero() {
		return nil
	}
	if math.IsNaN(float64(l.Rate)) || math.IsInf(float64(l.Rate), 0) || l.Rate <= 0 {
		return policyErr(field, "rate must be positive")
	}
	if l.Burst < 1 {
		return policyErr(field, "burst must be at least 1")
	}
	return nil
}

// A Budget says whose rate-limit budget a [LimitKey] names: [UserBudget]
// or [TokenBudget]. The zero Budget is invalid.
type Budget uint8

// UserBudget is a user's budget, shared by all of the user's tokens and by
// whatever else the host charges to it, such as logins.
const UserBudget Budget = 1

// TokenBudget is one org token's own budget.
const TokenBudget Budget = 2

// String returns "user", "token" or "invalid".
func (b Budget) String() string {
	switch b {
	case UserBudget:
		return "user"
	case TokenBudget:
		return "token"
	}
	return "invalid"
}

// LimitKey names one rate-limit budget: one per org token, one per user.
// Build it with [TokenKey] or [UserKey].
type LimitKey struct {
	Budget Budget
	ID     string // the token ID (TokenBudget) or the user ID (UserBudget)
}

// TokenKey returns the budget of the org token with the given ID.
func TokenKey(tokenID string) LimitKey { return LimitKey{Budget: TokenBudget, ID: tokenID} }

// UserKey returns the budget shared by all tokens of the user.
func UserKey(userID string) LimitKey { return LimitKey{Budget: UserBudget, ID: userID} }

// String returns "token:<id>" or "user:<id>".
func (k LimitKey) String() string {
	if k.Budget == UserBudget {
		return "user:" + k.ID
	}
	return "token:" + k.ID
}

// Decision is a limiter's answer for one request.
type Decision struct {
	Allowed bool
	Limit   Limit
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// ResetAt is when the bucket will be full again.
	ResetAt time.Time
	// ResetAfter is how long after the decision the bucket is full again
	// (ResetAt less the decision's instant), for RateLimit response headers.
	ResetAfter time.Duration
	// RetryAfter is how long to wait before one request is allowed; zero
	// when Allowed.
	RetryAfter time.Duration
}

// Limiter decides whether one more request fits a budget. Implementations
// must be safe for concurrent use and take the request in one atomic step.
// An error means the limiter could not decide; the Validator then fails
// closed with [ErrStoreUnavailable].
type Limiter interface {
	// Allow takes one request from key's budget under limit (never the zero
	// Limit) at now, and reports the decision. Limiters that keep a shared
	// clock (Redis) may ignore now.
	Allow(ctx context.Context, key LimitKey, limit Limit, now time.Time) (Decision, error)
}

// LocalLimiter is an in-process [Limiter]: GCRA (the generic cell rate
// algorithm, equivalent to a token bucket of Burst refilled at Rate) over 64
// sharded maps, so parallel callers on different keys rarely share a lock.
// A budget's whole state is one int64 in a plain map, which keeps lookups to
// one cache miss and leaves the garbage collector nothing to chase. It is
// safe for concurrent use. Its limits hold within one process only; replicas
// need a shared limiter such as the Redis one.
//
// Memory: a key costs about 100 bytes (its map entry, the ID string's bytes
// and the 8-byte state). A key whose bucket is full again carries no state
// and is dropped by the next sweep. A shard sweeps when a new key arrives and
// it has doubled since its last sweep (and holds at least 1,024 keys) or a
// minute has passed, so memory stays within about twice the number of keys
// used within one refill period, plus 64K keys. A sweep copies the keys it
// keeps into new maps, so the memory of a past burst of keys is given back.
// [LocalLimiter.Sweep] drops them at once.
type LocalLimiter struct {
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const (
	limiterShards  = 64
	minSweepLength = 1024
	sweepEvery     = time.Minute
)

type limiterShard struct {
	mu sync.Mutex
	// tat holds each budget's theoretical arrival time (Unix ns), one map
	// per Budget (user, token), keyed by ID: string keys take the maps'
	// fast path.
	tat       [2]map[string]int64
	n         int      // keys in both maps
	sweepNext int      // sweep when n reaches this
	lastSweep int64    // Unix ns
	_         [16]byte // keep shards on separate cache lines
}

// NewLocalLimiter returns an empty LocalLimiter.
func NewLocalLimiter() *LocalLimiter {
	l := &LocalLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].tat = [2]map[string]int64{make(map[string]int64), make(map[string]int64)}
		l.shards[i].sweepNext = minSweepLength
	}
	return l
}

var _ Limiter = (*LocalLimiter)(nil)

// Allow implements [Limiter]: it takes one request from key's budget at now.
// It returns an error only for a zero or invalid limit. A limit may change
// between calls; the budget's state carries over.
func (l *LocalLimiter) Allow(_ context.Context, key LimitKey, limit Limit, now time.Time) (Decision, error) {
	return l.AllowN(key, limit, now, 1)
}

// AllowN is Allow for n requests at once (n ≥ 1): all are taken or none.
// A key of another Budget than UserBudget or TokenBudget is an error.
func (l *LocalLimiter) AllowN(key LimitKey, limit Limit, now time.Time, n int) (Decision, error) {
	if limit.IsZero() || limit.validate("Limit") != nil || n < 1 {
		return Decision{}, fmt.Errorf("apitoken: local limiter: invalid limit %+v or count %d", limit, n)
	}
	if key.Budget != UserBudget && key.Budget != TokenBudget {
		return Decision{}, fmt.Errorf("apitoken: local limiter: invalid budget %v", key.Budget)
	}
	s := &l.shards[maphash.String(l.seed, key.ID)%limiterShards]
	t := now.UnixNano()
	s.mu.Lock()
	m := s.tat[key.Budget-UserBudget]
	tat, ok := m[key.ID]
	d, newTAT := gcra(limit, tat, t, n)
	if d.Allowed {
		m[key.ID] = newTAT
		if !ok {
			if s.n++; s.n >= s.sweepNext || t-s.lastSweep > int64(sweepEvery) {
				s.sweep(t)
			}
		}
	}
	s.mu.Unlock()
	reset := max(tat, t)
	if d.Allowed {
		reset = newTAT
	}
	d.ResetAt, d.ResetAfter = time.Unix(0, reset), time.Duration(reset-t)
	return d, nil
}

// gcra decides n requests at t (Unix ns) for a budget whose theoretical
// arrival time is tat, and returns the decision (without ResetAt) and the
// new TAT to store if allowed.
func gcra(limit Limit, tat, t int64, n int) (Decision, int64) {
	interval := float64(time.Second) / float64(limit.Rate) // ns per request
	tolerance := int64(interval * float64(limit.Burst))    // a full bucket
	inc := int64(interval * float64(n))
	tat = max(tat, t)
	newTAT := tat + inc
	d := Decision{Limit: limit}
	if allowAt := newTAT - tolerance; t < allowAt {
		d.RetryAfter = time.Duration(allowAt - t)
		d.Remaining = max(0, int(float64(t+tolerance-tat)/interval))
		return d, tat
	}
	d.Allowed = true
	d.Remaining = max(0, int(float64(t+tolerance-newTAT)/interval))
	return d, newTAT
}

// sweep drops keys whose buckets are full at t, by moving the others into
// new maps: a Go map keeps the room of the keys deleted from it, so deleting
// in place would keep the memory, and make every later sweep and insert pay
// for the largest burst of keys the shard ever saw. A new map has room for
// as many keys as the old one held, so traffic like the last period's adds
// keys without growing it (growing rehashes every key, reading key bytes
// that are long out of cache). The caller holds s.mu.
func (s *limiterShard) sweep(t int64) {
	for i, m := range s.tat {
		kept := make(map[string]int64, len(m))
		for k, tat := range m {
			if tat > t {
				kept[k] = tat
			}
		}
		s.tat[i] = kept
	}
	s.n = len(s.tat[0]) + len(s.tat[1])
	s.sweepNext = max(2*s.n, minSweepLength)
	s.lastSweep = t
}

// Sweep drops every key whose bucket is full at now (it would behave the
// same as a new key) and returns how many keys remain.
func (l *LocalLimiter) Sweep(now time.Time) int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.sweep(now.UnixNano())
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of keys held.
func (l *LocalLimiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// LimitDefaults are the policy's limits, for [LookupLimiter] and
// [LimitDefaults.LimitFor].
type LimitDefaults struct {
	Org  Limit // per org token without a limit of its own or of its roles
	User Limit // per user, shared by all of the user's tokens
	// Roles holds the limits of roles that set one (Role.RateLimit).
	Roles map[string]Limit
}

// LimitFor returns the budget key and limit that apply to t: for a user
// token, the user's budget under User; for an org token, the token's own
// budget under its RateLimit if set, else the highest-rate limit among its
// roles' limits, else Org. A zero Limit means no limit.
func (d LimitDefaults) LimitFor(t *Token) (LimitKey, Limit) {
	if t.Kind == KindUser {
		return UserKey(t.OwnerID), d.User
	}
	if t.RateLimit != nil {
		return TokenKey(t.ID), *t.RateLimit
	}
	limit, found := d.Org, false
	for _, r := range t.Roles {
		if l, ok := d.Roles[r]; ok && (!found || l.Rate > limit.Rate) {
			limit, found = l, true
		}
	}
	return TokenKey(t.ID), limit
}
