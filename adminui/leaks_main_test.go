package adminui_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a host
// server, a Validator's flush loop, or chromedp's connection to a browser.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
