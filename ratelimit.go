package apitoken

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
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

// LimitKey names one rate-limit budget: one per org token, one per user
// (shared by all of that user's tokens, and by whatever else the host charges
// to it, such as logins). Build it with [TokenKey] or [UserKey].
type LimitKey struct {
	Kind Kind   // KindOrg: a token's budget; KindUser: a user's budget
	ID   string // token ID or user ID
}

// TokenKey returns the budget of the token with the given ID.
func TokenKey(tokenID string) LimitKey { return LimitKey{Kind: KindOrg, ID: tokenID} }

// UserKey returns the budget shared by all tokens of the user.
func UserKey(userID string) LimitKey { return LimitKey{Kind: KindUser, ID: userID} }

// String returns "token:<id>" or "user:<id>".
func (k LimitKey) String() string {
	if k.Kind == KindUser {
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

// LocalLimiter is an in-process [Limiter] on golang.org/x/time/rate, sharded
// so parallel callers rarely share a lock. It is safe for concurrent use. Its
// limits hold within one process only; replicas need a shared limiter.
type LocalLimiter struct {
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const limiterShards = 64

type limiterShard struct {
	mu sync.Mutex
	m  map[LimitKey]*rate.Limiter
	_  [40]byte // keep shards on separate cache lines
}

// NewLocalLimiter returns an empty LocalLimiter.
func NewLocalLimiter() *LocalLimiter {
	l := &LocalLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[LimitKey]*rate.Limiter)
	}
	return l
}

var _ Limiter = (*LocalLimiter)(nil)

// Allow implements [Limiter]. It never returns an error unless limit is zero
// or invalid.
func (l *LocalLimiter) Allow(_ context.Context, key LimitKey, limit Limit, now time.Time) (Decision, error) {
	if err := limit.validate("Limit"); err != nil || limit.IsZero() {
		return Decision{}, fmt.Errorf("apitoken: local limiter: invalid limit %+v", limit)
	}
	s := &l.shards[maphash.String(l.seed, key.ID)%limiterShards]
	s.mu.Lock()
	rl := s.m[key]
	if rl == nil {
		rl = rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst) // starts full
		s.m[key] = rl
	} else {
		if rl.Limit() != rate.Limit(limit.Rate) {
			rl.SetLimitAt(now, rate.Limit(limit.Rate))
		}
		if rl.Burst() != limit.Burst {
			rl.SetBurstAt(now, limit.Burst)
		}
	}
	ok := rl.AllowN(now, 1)
	tokens := rl.TokensAt(now)
	s.mu.Unlock()
	return decide(ok, limit, tokens, now), nil
}

// decide builds a Decision from a token bucket's state after the take.
func decide(ok bool, limit Limit, tokens float64, now time.Time) Decision {
	d := Decision{Allowed: ok, Limit: limit}
	if tokens > 0 {
		d.Remaining = int(tokens)
	}
	perToken := float64(time.Second) / float64(limit.Rate)
	d.ResetAt = now.Add(time.Duration((float64(limit.Burst) - tokens) * perToken))
	if !ok {
		d.RetryAfter = time.Duration((1 - tokens) * perToken)
	}
	return d
}
