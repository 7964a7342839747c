package httpauth_test

import (
	"testing"

	"github.com/apitoken/apitoken/internal/benchtokens"
)

// TestMain fails the package's tests if any goroutine they started is still
// running at the end (the benchmarks' shared token sets are closed first).
func TestMain(m *testing.M) { benchtokens.Main(m) }
