package apitoken

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Options shared by the services. Each service takes its own option type
// ([IssuerOption], [ValidatorOption], [PrunerOption]), so passing an option
// to a constructor that does not take it is a compile error. An option that
// serves several services satisfies each: a [ServiceOption] (the clock, the
// logger) all three, a [KeyOption] (the hash keys) the Issuer's and the
// Validator's. The options of one service live beside its constructor.

// base is what every service reads: its clock, its logger and, for tests,
// the Run loops' ticker and the random source.
type base struct {
	clock  func() time.Time
	ticker func(time.Duration) (<-chan time.Time, func()) // a Run loop's ticker and its stop
	rand   io.Reader
	logger *slog.Logger
}

func newBase() base { return base{clock: time.Now, ticker: newTicker, rand: rand.Reader} }

// An IssuerOption configures [NewIssuer]: a [ServiceOption], a [KeyOption]
// or [WithSealKeys].
type IssuerOption interface {
	applyIssuer(*issuerConfig) error
}

// A ValidatorOption configures [NewValidator]: a [ServiceOption], a
// [KeyOption], or one of WithLimiter, WithUsers, WithFlushInterval and
// WithSingleTenant.
type ValidatorOption interface {
	applyValidator(*validatorConfig) error
}

// A PrunerOption configures [NewPruner]: a [ServiceOption], or one of
// WithBatchSize, WithPruneMargin and WithFlushFirst.
type PrunerOption interface {
	applyPruner(*prunerConfig) error
}

// A ServiceOption configures any service: it is an [IssuerOption], a
// [ValidatorOption] and a [PrunerOption]. The zero ServiceOption is an
// error.
type ServiceOption struct {
	name  string
	apply func(*base) error
}

func (o ServiceOption) applyBase(b *base) error {
	if o.apply == nil {
		return errors.New("zero ServiceOption")
	}
	if err := o.apply(b); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

func (o ServiceOption) applyIssuer(c *issuerConfig) error       { return o.applyBase(&c.base) }
func (o ServiceOption) applyValidator(c *validatorConfig) error { return o.applyBase(&c.base) }
func (o ServiceOption) applyPruner(c *prunerConfig) error       { return o.applyBase(&c.base) }

// A KeyOption configures the hash keys of an Issuer and a Validator alike
// (they must be given the same keys): it is an [IssuerOption] and a
// [ValidatorOption]. The zero KeyOption is an error.
type KeyOption struct {
	apply func() ([][]byte, error) // the key ring, copied afresh per call
}

func (o KeyOption) keys() ([][]byte, error) {
	if o.apply == nil {
		return nil, errors.New("zero KeyOption")
	}
	ring, err := o.apply()
	if err != nil {
		return nil, fmt.Errorf("WithHashKeys: %w", err)
	}
	return ring, nil
}

func (o KeyOption) applyIssuer(c *issuerConfig) error {
	var err error
	c.hashKeys, err = o.keys()
	return err
}

func (o KeyOption) applyValidator(c *validatorConfig) error {
	var err error
	c.hashKeys, err = o.keys()
	return err
}

// configure applies opts to c with apply, naming the constructor in an
// error.
func configure[O any, C any](constructor string, c *C, opts []O, apply func(O, *C) error) error {
	for _, o := range opts {
		if any(o) == nil {
			return fmt.Errorf("apitoken: %s: nil option", constructor)
		}
		if err := apply(o, c); err != nil {
			return fmt.Errorf("apitoken: %s: %w", constructor, err)
		}
	}
	return nil
}

// wipe zeroes keys once a service has built what it needs from them, so no
// key lingers in memory.
func wipe(keys [][]byte) {
	for _, k := range keys {
		clear(k)
	}
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
// Errors in the keys are reported by the constructor.
func WithHashKeys(keys ...[]byte) KeyOption {
	keys = slices.Clone(keys)
	return KeyOption{func() ([][]byte, error) {
		if len(keys) == 0 {
			return nil, fmt.Errorf("no keys")
		}
		return keyRing(keys, 0)
	}}
}

// WithClock sets the clock the service reads once per operation; nil
// restores time.Now. Tests use it to move time without sleeping. It moves
// everything the service decides, but not a limiter that keeps its own
// clock: the Redis limiter reads the Redis server's TIME by design, so all
// replicas share one clock; tests move it with redisstore.WithTimeOffset.
func WithClock(now func() time.Time) ServiceOption {
	return ServiceOption{"WithClock", func(c *base) error {
		if now == nil {
			now = time.Now
		}
		c.clock = now
		return nil
	}}
}

// WithLogger sets where the service logs background failures (last-used
// flushes, pruning). nil, the default, logs nothing.
func WithLogger(l *slog.Logger) ServiceOption {
	return ServiceOption{"WithLogger", func(c *base) error { c.logger = l; return nil }}
}
