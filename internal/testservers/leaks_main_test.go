package testservers_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/apitoken/apitoken/internal/testservers"
)

// TestMain stops the shared PostgreSQL cluster after the tests, then fails
// the run if any goroutine they started is still running: every server's
// watcher and every client they open is gone.
func TestMain(m *testing.M) {
	code := m.Run()
	testservers.StopPostgres()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
