package storetest

import "os"

// LongEnv is the environment variable that runs the clauses whose figure
// depends on a size at their long size (this module's scripts/test --long
// sets it). With APITOKEN_LONG=1:
//   - Prune/IdleExactAroundCutoff prunes 10,000 tokens instead of 500;
//   - Prune/TouchDuringPruneSurvives runs 100 rounds of 1,000 tokens
//     instead of 1 of 400;
//   - Concurrent/RevokeSeenByEveryLaterLookup runs 100 rounds of 1,000
//     lookups instead of 1;
//   - RevokeAll/RevokesEveryTokenOfTheOwner revokes 1,000 tokens instead
//     of 300, beside 1,000 of another user instead of 100.
//
// The default sizes keep the suite to seconds on the slowest store here
// (SQLite under the race detector, about 2.5 ms a write).
const LongEnv = "APITOKEN_LONG"

// long reports whether the environment asks for the long sizes.
func long() bool { return os.Getenv(LongEnv) == "1" }

// sized returns short, or full under APITOKEN_LONG=1.
func sized(short, full int) int {
	if long() {
		return full
	}
	return short
}
