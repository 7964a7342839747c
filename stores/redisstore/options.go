package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// DefaultKeyPrefix is the namespace of a Store or Limiter built without
// [WithKeyPrefix]: its keys start with "{apitoken}:".
const DefaultKeyPrefix = "apitoken"

// MaxKeyPrefixLen is the longest namespace [WithKeyPrefix] accepts.
const MaxKeyPrefixLen = 64

// An Option configures [New] or [NewLimiter].
type Option func(*options) error

type options struct {
	prefix        string
	retention     time.Duration
	allowEviction bool
	durable       bool
	durReplicas   int
	durTimeout    time.Duration
	offset        offset
}

func newOptions(opts []Option) (*options, error) {
	o := &options{prefix: DefaultKeyPrefix, retention: apitoken.DefaultRetention}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("nil Option")
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithKeyPrefix sets the namespace: every key of the Store or Limiter
// starts with "{ns}:", so all of them share the Redis Cluster hash tag
// {ns} and live in one slot (see the package documentation). Stores and
// limiters with the same namespace share tokens and budgets; different
// namespaces on one server are independent. ns must be 1 to
// [MaxKeyPrefixLen] bytes without '{', '}' or control characters. The
// default is [DefaultKeyPrefix].
func WithKeyPrefix(ns string) Option {
	return func(o *options) error {
		if ns == "" || len(ns) > MaxKeyPrefixLen || strings.ContainsAny(ns, "{}") ||
			strings.ContainsFunc(ns, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("WithKeyPrefix(%q): want 1 to %d bytes without '{', '}' or control characters", ns, MaxKeyPrefixLen)
		}
		o.prefix = ns
		return nil
	}
}

// WithRetention sets how long after a token ends (expires or is revoked,
// whichever comes first) Redis drops its keys by itself, with EXPIREAT:
// a backstop for an [apitoken.Pruner] that never runs. Use the policy's
// ExpiredRetention. Zero turns the backstop off (tokens stay until Prune or
// Delete removes them); a negative d is an error. The default is
// [apitoken.DefaultRetention] (30 days). The instant is set when a token is
// written; one already past is left to Prune.
func WithRetention(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("WithRetention(%v): negative", d)
		}
		o.retention = d
		return nil
	}
}

// WithEvictionAllowed lets [New] and [NewLimiter] accept a server whose
// maxmemory-policy is not noeviction, or that does not report it. Don't,
// unless the server cannot run out of memory: an evicting server silently
// deletes token records (the tokens then fail as unknown), rate-limit
// budgets (which then start full again) and index entries (listings,
// RevokeAll and pruning then miss tokens). Meant for tests and for managed
// servers that hide their configuration.
func WithEvictionAllowed() Option {
	return func(o *options) error {
		o.allowEviction = true
		return nil
	}
}

// WithTimeOffset is for tests: the rate-limit scripts of the Store or
// Limiter add f() to the Redis server's TIME, on which budgets are charged
// and refunded, so that a test can move the limiter's clock as
// [apitoken.WithClock] moves the core's, which it cannot (see
// [Limiter.Allow]). f is called once per Allow, Refund and GetByHashAllow;
// its result is truncated to microseconds. Only the limiter's clock moves:
// the revoked, expired and idle checks use the now the core passes, and the
// keys' backstop expiry ([WithRetention]) stays on server time. Don't use
// it in production, where every replica must charge budgets on one clock.
// A nil f is an error.
func WithTimeOffset(f func() time.Duration) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("WithTimeOffset(nil)")
		}
		o.offset = offset{f}
		return nil
	}
}

// offset is the test offset of [WithTimeOffset]; the zero value is none.
type offset struct{ f func() time.Duration }

// arg returns the offset in microseconds, as the scripts take it.
func (o offset) arg() string {
	if o.f == nil {
		return "0"
	}
	return strconv.FormatInt(o.f().Microseconds(), 10)
}

// WithDurableRevoke makes Revoke, RevokeAll and Delete wait, after their
// write, until it is fsynced to the primary's append-only file and to the
// append-only files of at least replicas replicas (WAITAOF 1 replicas
// timeout), for at most timeout. If the wait falls short they return an
// error matching [ErrNotDurable]; the change is then in effect in memory
// but may be lost by a crash or a failover, and repeating the call is safe
// (Revoke and RevokeAll are idempotent; Delete then reports
// [apitoken.ErrNotFound]).
//
// It needs Redis 7.2 or later (WAITAOF) with appendonly yes, and a
// *redis.Client (single server or Sentinel) or *redis.ClusterClient; New
// checks all three. Keep timeout below the client's ReadTimeout. See the
// package documentation for what each persistence setting can lose.
func WithDurableRevoke(replicas int, timeout time.Duration) Option {
	return func(o *options) error {
		if replicas < 0 || timeout <= 0 {
			return fmt.Errorf("WithDurableRevoke(%d, %v): want replicas >= 0 and a positive timeout", replicas, timeout)
		}
		o.durable, o.durReplicas, o.durTimeout = true, replicas, timeout
		return nil
	}
}
