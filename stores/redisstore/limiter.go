package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
)

// Limiter is an [apitoken.Limiter] on Redis: GCRA (the generic cell rate
// algorithm, a token bucket kept as one timestamp per budget) in one Lua
// script, so limits hold across every replica of an application. Use
// [NewLimiter]; the zero value is not usable. A Limiter is safe for
// concurrent use.
//
// A Limiter and a [Store] with the same namespace share budgets: a
// Validator whose store is a Redis Store should use the Store itself as
// its limiter (one round trip per validation); a Limiter serves a
// Validator whose tokens live elsewhere, and hosts that charge a user's
// budget for their own logins.
type Limiter struct {
	client redis.UniversalClient
	k      keys
	offset offset
	closed atomic.Bool
}

var _ apitoken.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter keeping budgets in the namespace of
// [WithKeyPrefix] on client, which the caller keeps and closes. Like [New]
// it refuses a server that may evict keys ([ErrEvictionPolicy]), since an
// evicted budget starts full again. It takes WithKeyPrefix,
// WithEvictionAllowed and WithTimeOffset; other options are ignored.
func NewLimiter(ctx context.Context, client redis.UniversalClient, opts ...Option) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redisstore: NewLimiter: nil client")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("redisstore: NewLimiter: %w", err)
	}
	if err := checkServers(ctx, client, o); err != nil {
		return nil, err
	}
	return &Limiter{client: client, k: keys{prefix: "{" + o.prefix + "}:"}, offset: o.offset}, nil
}

// Allow implements [apitoken.Limiter]: it takes one request from key's
// budget under limit in one script and one round trip. The script reads
// Redis server TIME, so every replica of the application charges budgets
// on one clock, whatever its own; now only anchors the Decision's ResetAt
// (now plus the time the server says is left), so ResetAt is consistent
// with the caller's clock. On a Cluster a budget lives on the server that
// holds its namespace's slot; after a failover the new primary's clock
// decides, and a skew between the two shifts budgets by that much. Tests
// move this clock with [WithTimeOffset], not with [apitoken.WithClock].
// A server at maxmemory under noeviction still takes the budget's write
// (the script has the allow-oom flag of Redis 7.0 and later; a budget is
// one small key), so limits hold and validation goes on while the server
// refuses Create and other writes with [ErrOutOfMemory].
//
// An invalid or zero limit is an error; so is a budget key of the wrong
// type or holding something other than a timestamp (a [*KeyError]). Any
// error means no decision: the Validator fails closed.
func (l *Limiter) Allow(ctx context.Context, key apitoken.LimitKey, limit apitoken.Limit, now time.Time) (apitoken.Decision, error) {
	if l.closed.Load() {
		return apitoken.Decision{}, apitoken.ErrClosed
	}
	return allow(ctx, l.client, l.k, l.offset, key, limit, now)
}

// Close marks the Limiter closed: later calls return [apitoken.ErrClosed].
// It does not close the client. It is idempotent and returns nil.
func (l *Limiter) Close(context.Context) error {
	l.closed.Store(true)
	return nil
}

// Allow implements [apitoken.Limiter] exactly as [Limiter.Allow] does, on
// the Store's namespace: the budgets are the ones GetByHashAllow charges.
func (s *Store) Allow(ctx context.Context, key apitoken.LimitKey, limit apitoken.Limit, now time.Time) (apitoken.Decision, error) {
	if err := s.check(ctx); err != nil {
		return apitoken.Decision{}, err
	}
	return allow(ctx, s.client, s.k, s.offset, key, limit, now)
}

func allow(ctx context.Context, c redis.UniversalClient, k keys, off offset, key apitoken.LimitKey, limit apitoken.Limit, now time.Time) (apitoken.Decision, error) {
	if r := float64(limit.Rate); math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 || limit.Burst < 1 {
		return apitoken.Decision{}, fmt.Errorf("redisstore: allow: invalid limit %+v", limit)
	}
	v, err := runFast(ctx, c, fastAllow, scriptAllow, []string{k.budget(key)}, k.prefix, formatRate(limit.Rate), limit.Burst, off.arg()).Slice()
	if err != nil {
		return apitoken.Decision{}, k.wrap("allow", err)
	}
	d, err := decision(v, limit, now)
	if err != nil {
		return apitoken.Decision{}, fmt.Errorf("redisstore: allow: %w", err)
	}
	return d, nil
}

// Refund implements [apitoken.LookupLimiter]: it gives back one request
// that Allow or GetByHashAllow took from key's budget under limit, in one
// script and one round trip. On Redis server time, as Allow charges, the
// budget's theoretical arrival time moves back by one emission interval
// (1/limit.Rate), never below the server's now, so the bucket never holds
// more than when full. A key with no state (a full bucket) is left alone
// and is no error; so is a zero limit, under which nothing was taken. An
// invalid limit is an error, and so is a budget key of the wrong type or
// holding something other than a timestamp (a [*KeyError]).
func (s *Store) Refund(ctx context.Context, key apitoken.LimitKey, limit apitoken.Limit, now time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return refund(ctx, s.client, s.k, s.offset, key, limit)
}

// Refund gives back one request that Allow took from key's budget under
// limit, exactly as [Store.Refund] does (on the Limiter's namespace).
func (l *Limiter) Refund(ctx context.Context, key apitoken.LimitKey, limit apitoken.Limit, now time.Time) error {
	if l.closed.Load() {
		return apitoken.ErrClosed
	}
	return refund(ctx, l.client, l.k, l.offset, key, limit)
}

func refund(ctx context.Context, c redis.UniversalClient, k keys, off offset, key apitoken.LimitKey, limit apitoken.Limit) error {
	if limit == (apitoken.Limit{}) {
		return nil
	}
	if r := float64(limit.Rate); math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 || limit.Burst < 1 {
		return fmt.Errorf("redisstore: refund: invalid limit %+v", limit)
	}
	if err := scriptRefund.Run(ctx, c, []string{k.budget(key)}, k.prefix, formatRate(limit.Rate), limit.Burst, off.arg()).Err(); err != nil {
		return k.wrap("refund", err)
	}
	return nil
}

func formatRate(r apitoken.Rate) string { return strconv.FormatFloat(float64(r), 'g', -1, 64) }

// decision builds a Decision from the GCRA script's reply {allowed,
// remaining, reset µs, retry-after µs}.
func decision(v []any, limit apitoken.Limit, now time.Time) (apitoken.Decision, error) {
	if len(v) != 4 {
		return apitoken.Decision{}, errors.New("unexpected limiter reply")
	}
	var n [4]int64
	for i := range n {
		x, ok := v[i].(int64)
		if !ok {
			return apitoken.Decision{}, errors.New("unexpected limiter reply")
		}
		n[i] = x
	}
	return apitoken.Decision{
		Allowed:    n[0] == 1,
		Limit:      limit,
		Remaining:  int(n[1]),
		ResetAt:    now.Add(time.Duration(n[2]) * time.Microsecond),
		ResetAfter: time.Duration(n[2]) * time.Microsecond,
		RetryAfter: time.Duration(n[3]) * time.Microsecond,
	}, nil
}
