package apitoken

import (
	"io"
	"time"
)

// WithRand replaces the random source, for tests of failure paths.
func WithRand(r io.Reader) ServiceOption {
	return ServiceOption{"WithRand", func(c *base) error { c.rand = r; return nil }}
}

// WithTicks makes the Run loops tick whenever the test sends on ticks.
func WithTicks(ticks <-chan time.Time) ServiceOption {
	return ServiceOption{"WithTicks", func(c *base) error {
		c.ticker = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
		return nil
	}}
}
