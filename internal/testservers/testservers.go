// Package testservers starts real, throwaway servers (PostgreSQL, Redis) on
// loopback for tests, and stops them when the tests are done. A missing
// server binary skips the test with a loud message, or fails it when the
// environment sets APITOKEN_REQUIRE_SERVERS=1 (as scripts/test does in CI).
package testservers

import (
	"net"
	"os"
	"testing"
)

// RequireEnv is the environment variable that turns a missing server from a
// skip into a failure.
const RequireEnv = "APITOKEN_REQUIRE_SERVERS"

// Required reports whether missing servers fail tests instead of skipping.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// LongEnv is the environment variable that turns on the long fault and
// scale runs (scripts/test --long sets it): the ones that would take the
// default test run past its time budget.
const LongEnv = "APITOKEN_LONG"

// Long skips t unless the environment sets APITOKEN_LONG=1; the test then
// runs at its full size. Use it for runs of a minute or more.
func Long(t testing.TB) {
	t.Helper()
	if os.Getenv(LongEnv) != "1" {
		t.Skip("long run: set " + LongEnv + "=1 (scripts/test --long) to run it")
	}
}

// Unavailable skips t (or fails it, under APITOKEN_REQUIRE_SERVERS=1)
// because the named server cannot run here.
func Unavailable(t testing.TB, server, why string) {
	t.Helper()
	msg := "testservers: " + server + " unavailable: " + why
	if Required() {
		t.Fatal(msg + " (" + RequireEnv + "=1)")
	}
	t.Skip("SKIPPING: " + msg + "; install it or run scripts/test")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testservers: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
