package storefaults

import (
	"testing"

	"github.com/apitoken/apitoken"
)

// A Fixture is a store under test and how its test package issues and
// validates tokens on it under one policy.
type Fixture struct {
	// Store is the store under test.
	Store apitoken.Store
	// Policy is the policy of Issue and NewValidator; the Pruners of
	// PrunersAtScale use it too.
	Policy apitoken.Policy
	// Issue issues a token on Store under Policy that may make Request,
	// and returns its plaintext and record.
	Issue func(t testing.TB) (string, *apitoken.Token)
	// NewValidator returns a Validator on Store under Policy with opts,
	// closed when t ends.
	NewValidator func(t testing.TB, opts ...apitoken.ValidatorOption) *apitoken.Validator
	// Request is a request the tokens of Issue may make.
	Request apitoken.Request
}
