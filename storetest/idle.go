package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses of idle pruning at scale: exactly the idle tokens go, and a
// token used while a Prune runs is not deleted once its use is stored.

func pruneScaleClauses() []clause {
	return []clause{
		{"IdleExactAroundCutoff", testPruneIdleExact},
		{"TouchDuringPruneSurvives", testPruneRacingTouch},
	}
}

// idleCutoff is the IdleBefore of the clauses: a 90-day idle timeout.
var idleCutoff = now.Add(-90 * day)

// createAll creates toks from a few goroutines at once (order does not
// matter), failing the test on the first error.
func createAll(t *testing.T, s apitoken.Store, toks []*apitoken.Token) {
	t.Helper()
	const workers = 4
	errs := make([]error, workers)
	race(workers, func(w int) {
		for i := w; i < len(toks) && errs[w] == nil; i += workers {
			if err := s.Create(t.Context(), toks[i], 0); err != nil {
				errs[w] = fmt.Errorf("Create(token %d of %d) error = %w, want nil", i, len(toks), err)
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// pruneAll runs Prune(r) in batches of r.Limit until a batch comes back
// short, as the Pruner does, and returns the deletions.
func pruneAll(t *testing.T, s apitoken.Store, r apitoken.PruneRequest) int {
	t.Helper()
	total := 0
	for batch := 1; ; batch++ {
		n, err := s.Prune(t.Context(), r)
		if err != nil {
			t.Fatalf("Prune batch %d (Limit %d, %d deleted before it) error = %v, want nil", batch, r.Limit, total, err)
		}
		if n < 0 || n > r.Limit {
			t.Fatalf("Prune batch %d (Limit %d) = %d, want 0 … %d", batch, r.Limit, n, r.Limit)
		}
		total += n
		if n < r.Limit {
			return total
		}
	}
}

// testPruneIdleExact: 500 tokens (10,000 under APITOKEN_LONG=1) whose
// last activity is spread at random over the two days around the idle
// cutoff (half never used: their creation counts; half used), with a few
// exactly at the cutoff and 1 µs either side of it. Pruning with
// IdleBefore at the cutoff, in batches as the Pruner does, deletes
// exactly those last active before it (no false deletion, no miss); a
// second pass deletes none.
func testPruneIdleExact(t *testing.T, s apitoken.Store) {
	n := sized(500, 10000)
	toks := make([]*apitoken.Token, n)
	var wantLeft []string
	wantDeleted := 0
	for i := range toks {
		var active time.Time
		switch i {
		case 0, 1:
			active = idleCutoff
		case 2, 3:
			active = idleCutoff.Add(-time.Microsecond)
		case 4, 5:
			active = idleCutoff.Add(time.Microsecond)
		default:
			active = idleCutoff.Add(rand.N(2*day) - day).Truncate(time.Microsecond)
		}
		tok := newToken(t)
		if i%2 == 0 { // never used
			tok.CreatedAt = active
		} else {
			tok.CreatedAt, tok.LastUsedAt = active.Add(-30*day), active
		}
		tok.UpdatedAt = tok.CreatedAt
		toks[i] = tok
		if active.Before(idleCutoff) {
			wantDeleted++
		} else {
			wantLeft = append(wantLeft, tok.ID)
		}
	}
	createAll(t, s, toks)
	r := apitoken.PruneRequest{IdleBefore: idleCutoff, Limit: 500}
	if got := pruneAll(t, s, r); got != wantDeleted {
		t.Errorf("Prune(IdleBefore the cutoff) in batches of %d over %d tokens around it deleted %d, want %d", r.Limit, n, got, wantDeleted)
	}
	left := ids(listAll(t, s, apitoken.Filter{Limit: apitoken.MaxPageSize}))
	slices.Sort(wantLeft)
	if !slices.Equal(left, wantLeft) {
		active := make(map[string]time.Time, n)
		for _, tok := range toks {
			active[tok.ID] = tok.ActiveAt()
		}
		var wrong, missed []string
		for _, id := range left {
			if _, ok := slices.BinarySearch(wantLeft, id); !ok {
				missed = append(missed, fmtTime(active[id]))
			}
		}
		for _, id := range wantLeft {
			if _, ok := slices.BinarySearch(left, id); !ok {
				wrong = append(wrong, fmtTime(active[id]))
			}
		}
		t.Errorf("after Prune(IdleBefore %s): %d tokens left, want %d; %d not idle deleted (last active %v), %d idle kept (last active %v)",
			fmtTime(idleCutoff), len(left), len(wantLeft), len(wrong), first(wrong, 5), len(missed), first(missed, 5))
	}
	if got := pruneAll(t, s, r); got != 0 {
		t.Errorf("second Prune(IdleBefore the cutoff) deleted %d, want 0", got)
	}
}

// first returns at most n elements of s.
func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// testPruneRacingTouch: the criteria "are re-checked at deletion, in the
// same atomic step, so a token touched after a scan began is not
// deleted". Each round has 400 tokens (1,000 under APITOKEN_LONG=1) of an
// owner of their own, last active 1 s before the idle cutoff: a quarter
// touched before the Prune starts, half touched while it runs, a quarter
// never touched. One Prune with room for all of them runs while the
// second half is touched one token at a time. Wanted: the tokens touched
// before the Prune began all survive; a token whose Touch returned and
// whose use a Get then saw survives (the Prune re-checks it); the
// untouched tokens are all deleted; Prune's count is the number of tokens
// gone. 1 round; 100 under APITOKEN_LONG=1.
func testPruneRacingTouch(t *testing.T, s apitoken.Store) {
	n := sized(400, 1000)
	ctx := t.Context()
	use := now // not idle
	r := apitoken.PruneRequest{IdleBefore: idleCutoff, Limit: n}
	rounds, seenTotal := sized(1, 100), 0
	defer func() {
		t.Logf("%d round(s): %d of %d tokens touched during a Prune had their use stored while it ran", rounds, seenTotal, rounds*n/2)
	}()
	for round := range rounds {
		owner := apitoken.UserOwner(fmt.Sprintf("user_round_%d", round))
		toks := make([]*apitoken.Token, n)
		for i := range toks {
			toks[i] = aged(t, -90*day-time.Second, func(x *apitoken.Token) { x.OwnerID = owner.ID })
		}
		createAll(t, s, toks)
		before, during, untouched := toks[:n/4], toks[n/4:3*n/4], toks[3*n/4:]
		uses := make([]apitoken.Use, len(before))
		for i, tok := range before {
			uses[i] = apitoken.Use{ID: tok.ID, At: use}
		}
		touch(t, s, uses...)

		seen := make([]bool, len(during)) // the use was seen stored
		var pruned int
		var pruneErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			pruned, pruneErr = s.Prune(ctx, r)
		})
		const touchers = 4
		for w := range touchers {
			wg.Go(func() {
				<-start
				for i := w; i < len(during); i += touchers {
					tok := during[i]
					if err := s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: use}}); err != nil {
						t.Errorf("round %d: Touch during Prune error = %v, want nil", round, err)
						return
					}
					got, err := s.Get(ctx, tok.ID)
					switch {
					case err == nil && got.LastUsedAt.Equal(use):
						seen[i] = true
					case err == nil:
						t.Errorf("round %d: Get after Touch returned: LastUsedAt = %v, want %v", round, fmtTime(got.LastUsedAt), fmtTime(use))
					case !errors.Is(err, apitoken.ErrNotFound): // else deleted before the touch
						t.Errorf("round %d: Get after Touch during Prune error = %v, want nil or %v", round, err, apitoken.ErrNotFound)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if pruneErr != nil {
			t.Fatalf("round %d: Prune racing touches error = %v, want nil", round, pruneErr)
		}

		present := make(map[string]bool, n)
		for _, tok := range listAll(t, s, apitoken.Filter{Owner: owner, Limit: apitoken.MaxPageSize}) {
			present[tok.ID] = true
		}
		count := func(toks []*apitoken.Token, keep func(i int) bool) (left int) {
			for i, tok := range toks {
				if keep(i) && present[tok.ID] {
					left++
				}
			}
			return left
		}
		all := func(int) bool { return true }
		nSeen := 0
		for _, ok := range seen {
			if ok {
				nSeen++
			}
		}
		if got := count(before, all); got != len(before) {
			t.Errorf("round %d: %d of %d tokens touched before the Prune began survived it, want all", round, got, len(before))
		}
		if got := count(during, func(i int) bool { return seen[i] }); got != nSeen {
			t.Errorf("round %d: %d of %d tokens whose use was stored (Touch returned, then Get saw it) while the Prune ran survived it, want all (the Prune re-checks at deletion)",
				round, got, nSeen)
		}
		if got := count(untouched, all); got != 0 {
			t.Errorf("round %d: %d of %d idle tokens nobody touched survived a Prune with room for all, want 0", round, got, len(untouched))
		}
		if gone := n - len(present); pruned != gone {
			t.Errorf("round %d: Prune racing touches = %d, but %d tokens are gone", round, pruned, gone)
		}
		if t.Failed() {
			return
		}
		seenTotal += nSeen
		// The survivors were used at now: later rounds' Prunes keep them.
	}
}
