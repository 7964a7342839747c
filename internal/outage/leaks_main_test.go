package outage_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/apitoken/apitoken/internal/testservers"
)

// TestMain fails the run if a goroutine the tests started is still running
// at the end: every server, client, store and Validator is closed.
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
