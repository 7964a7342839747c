package apitoken

import (
	"fmt"
	"time"
)

// validatorConfig is what NewValidator's options set.
type validatorConfig struct {
	base
	hashKeys      [][]byte
	limiter       Limiter
	users         Directory
	flushInterval time.Duration
	tenant        string
}

// validatorOption is a [ValidatorOption] of the Validator's own.
type validatorOption struct {
	name  string
	apply func(*validatorConfig) error
}

func (o validatorOption) applyValidator(c *validatorConfig) error {
	if err := o.apply(c); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

// WithLimiter rate-limits validations with lim: per token for org tokens, per
// user for user tokens, with the token's own limit or the policy's default.
// Without it nothing is rate-limited.
func WithLimiter(lim Limiter) ValidatorOption {
	return validatorOption{"WithLimiter", func(c *validatorConfig) error {
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
func WithUsers(d Directory) ValidatorOption {
	return validatorOption{"WithUsers", func(c *validatorConfig) error {
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
func WithSingleTenant(org string) ValidatorOption {
	return validatorOption{"WithSingleTenant", func(c *validatorConfig) error {
		if org == "" {
			return fmt.Errorf("empty org (name the one org the requests act in)")
		}
		c.tenant = org
		return nil
	}}
}

// DefaultFlushInterval is how often a Validator writes last-used times.
const DefaultFlushInterval = time.Minute

// WithFlushInterval sets how often the Validator writes the last-used
// times it has collected (default one minute). A crash loses at most one
// interval of last-used times. It is also the precision of a token's
// LastUsedAt: a use less than one interval after the stored LastUsedAt is
// not written, so LastUsedAt trails the latest use by less than two
// intervals (plus, across replicas, their flush delays). A store that is an
// [UseMarker] (memstore) gets each use written at once instead: nothing to
// flush, and LastUsedAt trails by less than one interval.
func WithFlushInterval(d time.Duration) ValidatorOption {
	return validatorOption{"WithFlushInterval", func(c *validatorConfig) error {
		if d <= 0 {
			return fmt.Errorf("interval must be positive")
		}
		c.flushInterval = d
		return nil
	}}
}
