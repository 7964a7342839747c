package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
)

// Exit codes an operator can script against (see exitHelp).
const (
	exitOK          = 0
	exitUsage       = 1
	exitNotFound    = 2
	exitPolicy      = 3
	exitConflict    = 4
	exitStore       = 5
	exitFrozen      = 6
	exitInterrupted = 130
)

const exitHelp = `Exit codes:
  0  success
  1  usage error (unknown command or flag, bad flag value, missing argument)
  2  not found (no token has the ID)
  3  policy violation (the message names the rule, e.g. AllowedLifetimes;
     also a mistake in the policy file, or a policy whose prefix is not the
     store's)
  4  conflict (a stale --if-version, or a concurrent change)
  5  store unavailable, or its schema missing or outdated (run apitoken migrate)
  6  frozen: the token is revoked or expired and cannot be changed
  130 interrupted
Errors go to stderr as one line "apitoken: …", never with a key or a secret.`

// exitError is an error with the exit code it causes.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usagef is a usage error (exit 1).
func usagef(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// storeErr marks an error of opening or checking a store (exit 5 unless it
// says otherwise).
func storeErr(err error) error {
	if code := classify(err); code != exitStore {
		return err
	}
	if errors.Is(err, sqlstore.ErrNotMigrated) || errors.Is(err, sqlstore.ErrSchemaOutdated) {
		err = fmt.Errorf("%w (run apitoken migrate)", err)
	}
	return &exitError{exitStore, err}
}

// classify returns the exit code for an error of the library. What matches
// no outcome is an infrastructure failure of the store.
func classify(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, apitoken.ErrNotFound):
		return exitNotFound
	case errors.Is(err, apitoken.ErrPolicy):
		return exitPolicy
	case errors.Is(err, apitoken.ErrConflict):
		return exitConflict
	case errors.Is(err, apitoken.ErrRevoked), errors.Is(err, apitoken.ErrExpired):
		return exitFrozen
	case errors.Is(err, apitoken.ErrBadCursor):
		return exitUsage
	case errors.Is(err, sqlstore.ErrNotMigrated), errors.Is(err, sqlstore.ErrSchemaOutdated),
		errors.Is(err, sqlstore.ErrSchemaTooNew), errors.Is(err, apitoken.ErrStoreUnavailable):
		return exitStore
	}
	return exitStore
}

// message is err as the one line printed on stderr: "apitoken: …", with
// what is not printable escaped (an error may quote a stored value).
func message(err error) string {
	s := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	return "apitoken: " + printable(strings.TrimPrefix(s, "apitoken: "))
}
