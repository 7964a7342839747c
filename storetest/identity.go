package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apitoken/apitoken"
)

// recordPolicyClauses check the optional PolicyRecorder capability; they
// skip on a store without it.
func recordPolicyClauses() []clause {
	return []clause{
		{"RecordsTheFirst", testRecordPolicyFirst},
		{"AnotherPrefixKeepsTheFirst", testRecordPolicyOtherPrefix},
		{"SamePrefixTakesTheFingerprint", testRecordPolicySamePrefix},
		{"ZeroIDOnlyReads", testRecordPolicyZeroReads},
		{"ConcurrentFirstCallsAgree", testRecordPolicyConcurrent},
		{"OutlivesTheTokens", testRecordPolicyOutlivesTokens},
	}
}

var (
	policyA  = apitoken.PolicyID{Prefix: "acme", Fingerprint: "00112233445566aa"}
	policyA2 = apitoken.PolicyID{Prefix: "acme", Fingerprint: "00112233445566bb"}
	policyB  = apitoken.PolicyID{Prefix: "tok", Fingerprint: "8899aabbccddeeff"}
)

// recordPolicy calls RecordPolicy, failing the test on error, and checks
// that it returned want.
func recordPolicy(t testing.TB, r apitoken.PolicyRecorder, id, want apitoken.PolicyID, what string) {
	t.Helper()
	got, err := r.RecordPolicy(t.Context(), id)
	if err != nil {
		t.Fatalf("%s: RecordPolicy(%+v) error = %v, want nil", what, id, err)
	}
	if got != want {
		t.Fatalf("%s: RecordPolicy(%+v) = %+v, want %+v", what, id, got, want)
	}
}

func testRecordPolicyFirst(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.PolicyRecorder](t, s)
	recordPolicy(t, r, apitoken.PolicyID{}, apitoken.PolicyID{}, "a new store")
	recordPolicy(t, r, policyA, policyA, "the first call")
	recordPolicy(t, r, apitoken.PolicyID{}, policyA, "a read after the first call")
	recordPolicy(t, r, policyA, policyA, "the same identity again")
}

func testRecordPolicyOtherPrefix(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.PolicyRecorder](t, s)
	recordPolicy(t, r, policyA, policyA, "the first call")
	recordPolicy(t, r, policyB, policyA, "another prefix")
	recordPolicy(t, r, apitoken.PolicyID{}, policyA, "a read after another prefix")
}

func testRecordPolicySamePrefix(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.PolicyRecorder](t, s)
	recordPolicy(t, r, policyA, policyA, "the first call")
	recordPolicy(t, r, policyA2, policyA, "another fingerprint (returns the one it replaced)")
	recordPolicy(t, r, apitoken.PolicyID{}, policyA2, "a read after another fingerprint")
	recordPolicy(t, r, policyB, policyA2, "another prefix after another fingerprint")
	recordPolicy(t, r, policyA, policyA2, "the first fingerprint again")
	recordPolicy(t, r, apitoken.PolicyID{}, policyA, "a read after the first fingerprint again")
}

func testRecordPolicyZeroReads(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.PolicyRecorder](t, s)
	for i := range 3 {
		recordPolicy(t, r, apitoken.PolicyID{}, apitoken.PolicyID{}, fmt.Sprintf("read %d of a new store", i+1))
	}
	recordPolicy(t, r, policyB, policyB, "the first call after reads (they recorded nothing)")
}

// testRecordPolicyConcurrent races first calls with different prefixes,
// then calls with one prefix and different fingerprints. Run it under
// -race.
func testRecordPolicyConcurrent(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.PolicyRecorder](t, s)
	const n = 16
	race := func(id func(i int) apitoken.PolicyID) []apitoken.PolicyID {
		got := make([]apitoken.PolicyID, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				got[i], errs[i] = r.RecordPolicy(context.WithoutCancel(t.Context()), id(i))
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent RecordPolicy(%+v) error = %v, want nil", id(i), err)
			}
		}
		return got
	}
	prefixed := func(i int) apitoken.PolicyID {
		return apitoken.PolicyID{Prefix: fmt.Sprintf("p%d", i), Fingerprint: fmt.Sprintf("%016x", i)}
	}
	got := race(prefixed)
	winner, wins := -1, 0
	for i, g := range got {
		if g == prefixed(i) {
			winner, wins = i, wins+1
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent first calls with different prefixes: %d returned their own identity, want exactly 1 (got %+v)", n, wins, got)
	}
	for i, g := range got {
		if g != prefixed(winner) {
			t.Errorf("concurrent first call %d returned %+v, want the recorded %+v", i, g, prefixed(winner))
		}
	}
	recordPolicy(t, r, apitoken.PolicyID{}, prefixed(winner), "a read after concurrent first calls")

	same := func(i int) apitoken.PolicyID {
		return apitoken.PolicyID{Prefix: prefixed(winner).Prefix, Fingerprint: fmt.Sprintf("%016x", 100+i)}
	}
	got = race(same)
	final, err := r.RecordPolicy(t.Context(), apitoken.PolicyID{})
	if err != nil {
		t.Fatalf("RecordPolicy(zero) error = %v, want nil", err)
	}
	seen := map[apitoken.PolicyID]int{prefixed(winner): 0}
	for i := range n {
		seen[same(i)] = 0
	}
	if _, ok := seen[final]; !ok || final == prefixed(winner) {
		t.Fatalf("after %d concurrent calls with new fingerprints the store holds %+v, want one of theirs", n, final)
	}
	// Each call replaced the fingerprint before it: every held identity
	// but the final one was returned exactly once.
	for _, g := range got {
		if _, ok := seen[g]; !ok {
			t.Fatalf("concurrent call returned %+v, which nobody recorded", g)
		}
		seen[g]++
	}
	for id, k := range seen {
		want := 1
		if id == final {
			want = 0
		}
		if k != want {
			t.Errorf("identity %+v was returned %d times, want %d (each call returns the one it replaced, the final one none)", id, k, want)
		}
	}
}

func testRecordPolicyOutlivesTokens(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.PolicyRecorder](t, s)
	tok := newToken(t)
	create(t, s, tok)
	recordPolicy(t, r, policyA, policyA, "the first call")
	if err := s.Delete(t.Context(), tok.ID); err != nil {
		t.Fatalf("Delete error = %v, want nil", err)
	}
	recordPolicy(t, r, apitoken.PolicyID{}, policyA, "a read after the store's only token was deleted")
}
