// Package storefaults holds helpers for the stores' fault and scale tests:
// the test logic that the SQL and Redis stores' tests share, written once
// against [apitoken.Store]. Each store's test package says how to open and
// seed its store and which thresholds it asserts; the helpers run the rest
// and report through testing and testify. It is for this module's tests
// only.
package storefaults
