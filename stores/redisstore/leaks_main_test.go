package redisstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine they started is still
// running at the end: every store, client and Validator they build is
// closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
