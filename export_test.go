package apitoken

import "io"

// WithRand replaces the random source, for tests of failure paths.
func WithRand(r io.Reader) Option {
	return Option{"internal", func(c *config) error { c.rand = r; return nil }}
}
