package apitoken_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine they started is still
// running at the end: every Validator, store and server they build is
// closed (the benchmarks' shared token sets after the last benchmark).
func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range benchSets {
		s.v.Close(context.Background())
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
