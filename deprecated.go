package apitoken

import "context"

// Run blocks until ctx ends and returns nil.
//
// Deprecated: the Validator writes last-used times by itself, from the
// goroutine [NewValidator] starts; call [Validator.Close] at shutdown.
// Run goes before the first release.
func (v *Validator) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
