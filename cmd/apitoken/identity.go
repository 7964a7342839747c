package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/apitoken/apitoken"
)

// use says what a command does with the store, for the check of the
// policy's identity against the one the store recorded.
type use uint8

const (
	// migrates: migrate, which reads no token and needs no policy.
	migrates use = iota
	// reads: list, show, expiring. Another prefix or fingerprint is a
	// warning: what they print is still the store's.
	reads
	// writes: issue, update, regenerate, prune, whose outcome follows the
	// policy (the new key's prefix, the lifetime rules, the idle timeout).
	// Another prefix refuses; another fingerprint is a warning.
	writes
	// defends: revoke, revoke-all, delete. They use no policy, and a
	// leaked token must be killable whatever the operator's setup, so
	// another prefix is only a warning.
	defends
)

const usePolicy = "give the servers' policy file with --policy FILE or APITOKEN_POLICY"

// checkPolicy compares the policy's identity with the one the store holds
// (a store that records none is not checked): for a command that writes,
// another prefix is an error (exit 3); otherwise, and for another
// fingerprint, a warning on stderr. It records held in s for later
// warnings.
func (a *app) checkPolicy(ctx context.Context, s *openedStore, u use) error {
	rec, ok := s.Store.(apitoken.PolicyRecorder)
	if !ok || u == migrates {
		return nil
	}
	held, err := rec.RecordPolicy(ctx, apitoken.PolicyID{})
	if err != nil {
		return storeErr(err)
	}
	s.held = held
	if held.IsZero() {
		return nil
	}
	mine := a.policy.ID()
	if held.Prefix != mine.Prefix {
		what := fmt.Sprintf("the store holds tokens of policy prefix %q, this command's policy has prefix %q (%s)",
			held.Prefix, mine.Prefix, a.policySource())
		if u == writes {
			return &exitError{exitPolicy, errors.New(what + ": refusing to write; " + usePolicy)}
		}
		a.warn(what + ": " + map[use]string{
			reads:   "statuses and expiries follow this command's policy",
			defends: "going on, since this command uses no policy",
		}[u] + "; " + usePolicy)
		return nil
	}
	if held.Fingerprint != mine.Fingerprint {
		a.warn(fmt.Sprintf("this command's policy (%s) is not the one the store's tokens were last issued under "+
			"(fingerprint %q, the store's %q): %s, unless the servers' policy changed since",
			a.policySource(), mine.Fingerprint, held.Fingerprint, usePolicy))
	}
	return nil
}

// warnFirstRecord warns, before issue or regenerate writes to a store that
// records no policy yet, that the default policy is about to become the
// store's when no policy file was given.
func (a *app) warnFirstRecord(s *openedStore) {
	if _, ok := s.Store.(apitoken.PolicyRecorder); !ok || !s.held.IsZero() || a.policyPath != "" {
		return
	}
	a.warn(fmt.Sprintf("the store records no policy yet and no policy file is given: the default policy (prefix %q) "+
		"becomes the store's, and Issuers under another prefix will be refused; %s", a.policy.ID().Prefix, usePolicy))
}

// policySource names where the policy came from, for messages.
func (a *app) policySource() string {
	if a.policyPath == "" {
		return "no policy file given: the default policy"
	}
	return "policy file " + a.policyPath
}

// warnEmptyNamespace warns, after a listing found nothing, when s is a
// Redis namespace that holds no token and no policy identity: the likely
// cause is a key prefix other than the servers'.
func (a *app) warnEmptyNamespace(ctx context.Context, s *openedStore) error {
	if s.namespace == "" || !s.held.IsZero() {
		return nil
	}
	if _, ok := s.Store.(apitoken.PolicyRecorder); !ok {
		return nil
	}
	page, err := s.List(ctx, apitoken.Filter{Limit: 1})
	if err != nil || len(page.Tokens) > 0 {
		return err
	}
	a.warn(fmt.Sprintf("the Redis namespace %q holds no tokens and no policy: if the servers keep their tokens "+
		"under another key prefix, give it with ?prefix=NS in the store URL (their redisstore.WithKeyPrefix)", s.namespace))
	return nil
}

// warn prints one warning line on stderr.
func (a *app) warn(msg string) {
	fmt.Fprintln(a.stderr, "apitoken: warning: "+printable(msg))
}
