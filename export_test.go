package apitoken

import (
	"io"
	"time"
)

// WithRand replaces the random source, for tests of failure paths.
func WithRand(r io.Reader) Option {
	return Option{"internal", func(c *config) error { c.rand = r; return nil }}
}

// WithTicks makes the Run loops tick whenever the test sends on ticks.
func WithTicks(ticks <-chan time.Time) Option {
	return Option{"internal", func(c *config) error {
		c.ticker = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
		return nil
	}}
}
