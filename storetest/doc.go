// Package storetest is the conformance suite for [apitoken.Store]
// implementations. Every store in this module runs it, and a third-party
// store that passes [Run] works with the apitoken package.
//
// Each clause of the Store contract in package apitoken is checked under a
// subtest named after it (Get/MissingIsErrNotFound, Revoke/Idempotent,
// List/CursorPastEnd, …), so a failure points at the sentence the store
// breaks, and reports what it got and what the contract wants. The suite
// uses the standard library only, never sleeps, and makes expired, idle and
// revoked records by writing instants relative to a fixed time, truncated to
// microseconds so SQL stores round-trip them exactly.
//
// Recipe for a store author (newStore returns a fresh, empty store for each
// subtest and registers its own cleanup; use [Namespace] to keep subtests
// apart on one shared server):
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apitoken.Store {
//			s := mystore.New(client, mystore.WithKeyPrefix(storetest.Namespace(t)))
//			t.Cleanup(func() { s.Close(context.Background()) })
//			return s
//		})
//	}
//
// [Bench] takes the same kind of constructor and measures the operations
// whose cost matters (lookups by hash, last-used batches, creation), so the
// numbers of different stores are comparable.
//
// Concurrency: subtests call t.Parallel, each on its own store. The
// Concurrent/… clauses (revoke racing a lookup, no lost last-used updates,
// atomic uniqueness and per-owner bounds, one winner among racing updates,
// racing regenerations, a revoke seen by 1,000 concurrent lookups that
// start after it returned, hashes dropped by 50 chained rotations looked up
// while they run) and Prune/TouchDuringPruneSurvives (a prune racing
// touches) are written for the race detector: run the suite with go test
// -race. They also check outcomes, but a store that shares memory unsafely
// is only reliably caught under -race.
//
// Instants: the clauses that decide on an instant check it to the
// nanosecond on either side: a token expiring at E is live at E−1ns and
// expired at E (Create/MaxPerOwnerCountsLiveUntilExpiresAt,
// GetByHashAllow/ChargedUntilExpiresAt, and through a Validator with a
// clock, Expiry/ValidUntilExpiresAt and Expiry/GraceEndsAtPrevExpiresAt,
// 1,000 random instants after E each); Prune's instants are exclusive
// (Prune/IdleBeforeIsExclusive, Prune/EndedBeforeIsExclusive).
//
// Sizes: Prune/IdleExactAroundCutoff, Prune/TouchDuringPruneSurvives,
// RevokeAll/RevokesEveryTokenOfTheOwner and
// Concurrent/RevokeSeenByEveryLaterLookup run at a size that keeps the
// suite to seconds, and at their full size when the environment sets
// APITOKEN_LONG=1 (see [LongEnv]).
//
// Model/RandomSequencesMatchTheModel runs [ModelSequences] seeded random
// sequences of [ModelOperations] operations (create, get, get by hash,
// update with new, stale or taken values, revoke, revoke all, delete,
// touch, prune, list, clock advances) against the store and against a
// reference model of the contract, and compares every result; a failure
// prints the seed and the sequence up to the failing operation, which
// reproduces it on an empty store. With -short it runs a tenth of them.
//
// Versioning: the suite is versioned by [Version]. A clause that tightens
// the contract raises it and is listed in the CHANGELOG as a breaking change
// for store authors. Optional capabilities, when there are any, are tested
// only when the store implements them and are skipped with a reason
// otherwise: in version 3, [apitoken.HashReader] (the ReadByHash/… clauses,
// and every GetByHash check also asks ReadByHash),
// [apitoken.LookupLimiter] (the GetByHashAllow/… and Refund/… clauses),
// [apitoken.UseMarker] (the MarkUsed/… clauses) and
// [apitoken.PolicyRecorder] (the RecordPolicy/… clauses; the
// ConcurrentFirstCallsAgree clause is written for -race).
//
// Lifecycle: Concurrent/RegenerateKeepsOneLiveSecret and
// Concurrent/ConditionalRegenerateOneWins drive the store through an
// [apitoken.Issuer] and check the secrets with an [apitoken.Validator]
// (default policy, no hash keys), as an application would.
package storetest
