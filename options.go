package apitoken

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Option configures [NewIssuer], [NewValidator] or [NewPruner]. Each option's
// doc says which constructors take it; passing it to another is an error.
type Option struct {
	name  string
	apply func(*config) error
}

// config collects the options of every service.
type config struct {
	hashKeys      [][]byte
	sealKeys      [][]byte
	clock         func() time.Time
	ticker        func(time.Duration) (<-chan time.Time, func()) // the Run loops' ticker and its stop
	rand          io.Reader
	limiter       Limiter
	users         Directory
	flushInterval time.Duration
	logger        *slog.Logger
	batchSize     int
	pruneMargin   time.Duration
	flushFirst    *Validator
	tenant        string
}

func newConfig(service string, allowed []string, opts []Option) (*config, error) {
	c := &config{
		clock:         time.Now,
		ticker:        newTicker,
		rand:          rand.Reader,
		flushInterval: DefaultFlushInterval,
		batchSize:     DefaultPruneBatch,
		pruneMargin:   DefaultPruneMargin,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("apitoken: %s: zero Option", service)
		}
		if o.name != "internal" && !slices.Contains(allowed, o.name) {
			return nil, fmt.Errorf("apitoken: %s does not take option %s", service, o.name)
		}
		if err := o.apply(c); err != nil {
			return nil, fmt.Errorf("apitoken: %s: %s: %w", service, o.name, err)
		}
	}
	return c, nil
}

// wipeKeys zeroes and drops the config's copies of keys once the service has
// built what it needs from them, so no key sits in a printable struct.
func (c *config) wipeKeys() {
	for _, k := range append(c.hashKeys, c.sealKeys...) {
		clear(k)
	}
	c.hashKeys, c.sealKeys = nil, nil
}

func newTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func keyRing(keys [][]byte, exact int) ([][]byte, error) {
	out := make([][]byte, 0, len(keys))
	for i, k := range keys {
		if exact > 0 && len(k) != exact {
			return nil, fmt.Errorf("key %d: want %d bytes, got %d", i, exact, len(k))
		}
		if len(k) < MinHashKeyLen {
			return nil, fmt.Errorf("key %d: want at least %d bytes, got %d", i, MinHashKeyLen, len(k))
		}
		out = append(out, slices.Clone(k))
	}
	return out, nil
}

// WithHashKeys makes tokens hashed with HMAC-SHA256 under keys[0]; the other
// keys are older keys that still validate, tried in order after a miss (one
// more store lookup each). A token found under an older key has
// Principal.KeyOutdated set; [Issuer.Rehash] moves it to the current key.
// Each key must be at least MinHashKeyLen random bytes; the keys are copied.
// Without this option tokens are hashed with plain SHA-256. Issuer and
// Validator must be given the same keys.
//
// Taken by NewIssuer and NewValidator.
func WithHashKeys(keys ...[]byte) Option {
	return Option{"WithHashKeys", func(c *config) error {
		if len(keys) == 0 {
			return fmt.Errorf("no keys")
		}
		ring, err := keyRing(keys, 0)
		c.hashKeys = ring
		return err
	}}
}

// WithSealKeys makes tokens recoverable: the Issuer also stores each secret
// encrypted with XChaCha20-Poly1305 under keys[0] (the token ID as associated
// data), and [Issuer.Reveal] decrypts it with whichever key sealed it. Each
// key must be exactly 32 random bytes; the keys are copied. Without this
// option only the hash is stored.
//
// Taken by NewIssuer.
func WithSealKeys(keys ...[]byte) Option {
	return Option{"WithSealKeys", func(c *config) error {
		if len(keys) == 0 {
			return fmt.Errorf("no keys")
		}
		ring, err := keyRing(keys, 32)
		c.sealKeys = ring
		return err
	}}
}

// WithClock sets the clock the service reads once per operation; nil
// restores time.Now. Tests use it to move time without sleeping.
//
// Taken by NewIssuer, NewValidator and NewPruner.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", func(c *config) error {
		if now == nil {
			now = time.Now
		}
		c.clock = now
		return nil
	}}
}

// WithLogger sets where the service logs background failures (last-used
// flushes, pruning). nil, the default, logs nothing.
//
// Taken by NewIssuer, NewValidator and NewPruner.
func WithLogger(l *slog.Logger) Option {
	return Option{"WithLogger", func(c *config) error { c.logger = l; return nil }}
}

// WithLimiter rate-limits validations with lim: per token for org tokens, per
// user for user tokens, with the token's own limit or the policy's default.
// Without it nothing is rate-limited.
//
// Taken by NewValidator.
func WithLimiter(lim Limiter) Option {
	return Option{"WithLimiter", func(c *config) error {
		if lim == nil {
			return fmt.Errorf("nil Limiter")
		}
		c.limiter = lim
		return nil
	}}
}

// WithUsers sets the directory user tokens take their user's current
// privileges from. Without it every user token is rejected with
// [ErrForbidden] (fail closed).
//
// Taken by NewValidator.
func WithUsers(d Directory) Option {
	return Option{"WithUsers", func(c *config) error {
		if d == nil {
			return fmt.Errorf("nil Directory")
		}
		c.users = d
		return nil
	}}
}

// WithSingleTenant makes the Validator single-tenant: org is the one org
// its requests act in, so a [Request] with an empty Org acts in org (a
// request naming another org still acts there). Without it a Validator is
// multi-tenant: every request must name its org, and no org token works in
// a request that names none (it fails as [ErrUnknown], as a token of
// another org does), so a route that forgot to supply the org fails closed.
// org must not be empty.
//
// Taken by NewValidator.
func WithSingleTenant(org string) Option {
	return Option{"WithSingleTenant", func(c *config) error {
		if org == "" {
			return fmt.Errorf("empty org (name the one org the requests act in)")
		}
		c.tenant = org
		return nil
	}}
}

// DefaultFlushInterval is how often [Validator.Run] writes last-used times.
const DefaultFlushInterval = time.Minute

// WithFlushInterval sets how often [Validator.Run] writes the last-used
// times it has collected (default one minute). A crash loses at most one
// interval of last-used times. It is also the precision of a token's
// LastUsedAt: a use less than one interval after the stored LastUsedAt is
// not written, so LastUsedAt trails the latest use by less than two
// intervals (plus, across replicas, their flush delays). A store that is an
// [UseMarker] (memstore) gets each use written at once instead: nothing to
// flush, and LastUsedAt trails by less than one interval.
//
// Taken by NewValidator.
func WithFlushInterval(d time.Duration) Option {
	return Option{"WithFlushInterval", func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("interval must be positive")
		}
		c.flushInterval = d
		return nil
	}}
}

// DefaultPruneBatch is how many tokens one prune step deletes at most.
const DefaultPruneBatch = 500

// WithBatchSize sets how many tokens one prune step deletes at most.
//
// Taken by NewPruner.
func WithBatchSize(n int) Option {
	return Option{"WithBatchSize", func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("batch size must be positive")
		}
		c.batchSize = n
		return nil
	}}
}

// DefaultPruneMargin is added to the idle timeout when pruning, so tokens
// used on a replica whose last-used times are not yet flushed survive.
const DefaultPruneMargin = time.Hour

// WithPruneMargin sets how much longer than the idle timeout a token must be
// unused before the pruner removes it (default one hour). Keep it above every
// replica's flush interval.
//
// Taken by NewPruner.
func WithPruneMargin(d time.Duration) Option {
	return Option{"WithPruneMargin", func(c *config) error {
		if d < 0 {
			return fmt.Errorf("negative margin")
		}
		c.pruneMargin = d
		return nil
	}}
}

// WithFlushFirst makes the pruner flush v's pending last-used times before
// each pass.
//
// Taken by NewPruner.
func WithFlushFirst(v *Validator) Option {
	return Option{"WithFlushFirst", func(c *config) error {
		if v == nil {
			return fmt.Errorf("nil Validator")
		}
		c.flushFirst = v
		return nil
	}}
}
