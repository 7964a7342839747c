package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses about concurrent calls. They check outcomes, and are written to
// give the race detector overlapping reads and writes to find.

func concurrentClauses() []clause {
	return []clause{
		{"RevokeRacesGetByHash", testConcurrentRevoke},
		{"NoLostTouches", testConcurrentTouches},
		{"CreateUniqueUnderRace", testConcurrentCreateUnique},
		{"MaxPerOwnerAtomic", testConcurrentMaxPerOwner},
		{"UpdateOneWinner", testConcurrentUpdate},
		{"GetByHashNeverMissesDuringWrites", testConcurrentLookupDuringWrites},
		{"RegenerateKeepsOneLiveSecret", testConcurrentRegenerate},
		{"ConditionalRegenerateOneWins", testConcurrentConditionalRegenerate},
	}
}

// race runs f(0) … f(n-1) in n goroutines released at the same moment, and
// returns once all have returned.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentRevoke(t *testing.T, s apitoken.Store) {
	const readers, readsAfter = 4, 100
	ctx := t.Context()
	for round := range 3 {
		tok := newToken(t)
		create(t, s, tok)
		var revoked atomic.Bool
		var ready, wg sync.WaitGroup
		ready.Add(readers)
		for range readers {
			wg.Go(func() {
				first := true
				defer func() {
					if first {
						ready.Done()
					}
				}()
				for after := 0; after < readsAfter; {
					// Read the flag before the call: if Revoke had returned
					// by then, the call must see its effect.
					was := revoked.Load()
					got, err := s.GetByHash(ctx, tok.Hash)
					if err != nil {
						t.Errorf("round %d: GetByHash during Revoke error = %v, want nil", round, err)
						return
					}
					if was && !got.Revoked() {
						t.Errorf("round %d: GetByHash called after Revoke returned: RevokedAt = %v, want %v", round, fmtTime(got.RevokedAt), fmtTime(now.Add(time.Hour)))
						return
					}
					_ = got.Name + got.OwnerID // read the snapshot while writers run
					if first {
						first = false
						ready.Done()
					}
					if was {
						after++
					}
				}
			})
		}
		// A toucher replaces the record concurrently, as a flush would.
		wg.Go(func() {
			for i := range 50 {
				if err := s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: now.Add(time.Duration(i) * time.Second)}}); err != nil {
					t.Errorf("round %d: Touch during Revoke error = %v, want nil", round, err)
					return
				}
			}
		})
		ready.Wait()
		if err := s.Revoke(ctx, tok.ID, now.Add(time.Hour)); err != nil {
			t.Errorf("round %d: Revoke error = %v, want nil", round, err)
		}
		revoked.Store(true)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

func testConcurrentTouches(t *testing.T, s apitoken.Store) {
	const workers, rounds = 8, 40
	shared := newToken(t)
	own := make([]*apitoken.Token, workers)
	for i := range own {
		own[i] = newToken(t)
	}
	create(t, s, shared)
	create(t, s, own...)
	// Worker w touches at seconds r*workers+w, in a scrambled order of r,
	// so later and earlier uses interleave across and within workers.
	at := func(w, r int) time.Time { return now.Add(time.Duration(r*workers+w+1) * time.Second) }
	race(workers, func(w int) {
		for k := range rounds {
			r := (k * 17) % rounds
			uses := []apitoken.Use{{ID: shared.ID, At: at(w, r)}, {ID: own[w].ID, At: at(w, r)}}
			if k%2 == 1 {
				uses[0], uses[1] = uses[1], uses[0]
			}
			if err := s.Touch(t.Context(), uses); err != nil {
				t.Errorf("worker %d: Touch error = %v, want nil", w, err)
				return
			}
		}
	})
	wantTime(t, "LastUsedAt of the token every worker touched", get(t, s, shared.ID).LastUsedAt, at(workers-1, rounds-1))
	for w, tok := range own {
		wantTime(t, fmt.Sprintf("LastUsedAt of the token worker %d touched", w), get(t, s, tok.ID).LastUsedAt, at(w, rounds-1))
	}
}

// wantOneWinner checks that exactly one of errs is nil and the others
// match want, and returns the winner's index.
func wantOneWinner(t testing.TB, what string, errs []error, want error) int {
	t.Helper()
	winner, wins := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			wins++
		case !errors.Is(err, want):
			t.Errorf("%s: call %d error = %v, want nil or %v", what, i, err, want)
		}
	}
	if wins != 1 {
		t.Errorf("%s: %d of %d calls succeeded, want exactly 1", what, wins, len(errs))
	}
	return winner
}

func testConcurrentCreateUnique(t *testing.T, s apitoken.Store) {
	const n = 16
	ctx := t.Context()
	try := func(what string, change func(i int, tok *apitoken.Token)) ([]*apitoken.Token, int) {
		toks := make([]*apitoken.Token, n)
		for i := range toks {
			toks[i] = newToken(t)
			change(i, toks[i])
		}
		errs := make([]error, n)
		race(n, func(i int) { errs[i] = s.Create(ctx, toks[i], 0) })
		return toks, wantOneWinner(t, what, errs, apitoken.ErrConflict)
	}

	h := randomHash()
	toks, w := try(fmt.Sprintf("%d Creates with one Hash", n), func(_ int, tok *apitoken.Token) { tok.Hash = h })
	if w >= 0 {
		if got := getByHash(t, s, h, "the contested hash"); got.ID != toks[w].ID {
			t.Errorf("GetByHash(the contested hash).ID = %s, want the winner's %s", got.ID, toks[w].ID)
		}
	}

	id := newID(t)
	toks, w = try(fmt.Sprintf("%d Creates with one ID", n), func(_ int, tok *apitoken.Token) { tok.ID = id })
	if w >= 0 {
		wantSame(t, "Get(the contested ID)", get(t, s, id), toks[w])
		for i, tok := range toks {
			if i != w {
				wantHashNotFound(t, s, tok.Hash, "hash of a loser of the race for one ID")
			}
		}
	}

	// Half claim the hash as Hash, half as PrevHash (a regenerated token).
	h = randomHash()
	try(fmt.Sprintf("%d Creates with one hash as Hash or PrevHash", n), func(i int, tok *apitoken.Token) {
		if i%2 == 0 {
			tok.Hash = h
		} else {
			tok.PrevHash, tok.PrevExpiresAt = h, now.Add(time.Hour)
		}
	})
}

func testConcurrentMaxPerOwner(t *testing.T, s apitoken.Store) {
	const n, limit = 16, 3
	toks := make([]*apitoken.Token, n)
	for i := range toks {
		toks[i] = newToken(t)
	}
	errs := make([]error, n)
	race(n, func(i int) { errs[i] = s.Create(t.Context(), toks[i], limit) })
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, apitoken.ErrTooManyTokens):
			t.Errorf("Create %d of %d racing for one owner (max %d) error = %v, want nil or %v", i, n, limit, err, apitoken.ErrTooManyTokens)
		}
	}
	if wins != limit {
		t.Errorf("%d Creates racing for one owner with max %d: %d succeeded, want %d", n, limit, wins, limit)
	}
	if got := len(listAll(t, s, apitoken.Filter{Owner: apitoken.UserOwner("user_1")})); got != limit {
		t.Errorf("List(owner) after the race = %d tokens, want %d", got, limit)
	}
}

func testConcurrentUpdate(t *testing.T, s apitoken.Store) {
	const n = 8
	tok := newToken(t)
	create(t, s, tok)
	copies := make([]*apitoken.Token, n)
	for i := range copies {
		copies[i] = get(t, s, tok.ID)
		copies[i].Name = fmt.Sprintf("writer %d", i)
	}
	errs := make([]error, n)
	race(n, func(i int) { errs[i] = s.Update(t.Context(), copies[i]) })
	w := wantOneWinner(t, fmt.Sprintf("%d Updates from one Version", n), errs, apitoken.ErrConflict)
	got := get(t, s, tok.ID)
	if got.Version != tok.Version+1 {
		t.Errorf("Version after %d racing Updates = %d, want %d", n, got.Version, tok.Version+1)
	}
	if w >= 0 && got.Name != copies[w].Name {
		t.Errorf("Name after %d racing Updates = %q, want the winner's %q", n, got.Name, copies[w].Name)
	}
}

// testConcurrentLookupDuringWrites: while a token is touched and updated
// (its hash unchanged), GetByHash always finds it: a store that replaces
// records must never let a lookup fall between the old and the new one.
func testConcurrentLookupDuringWrites(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	tok := newToken(t)
	create(t, s, tok)
	var done atomic.Bool
	var misses atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				if _, err := s.GetByHash(ctx, tok.Hash); err != nil {
					misses.Add(1)
				}
			}
		})
	}
	cur := get(t, s, tok.ID)
	for i := range 50 {
		if err := s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: now.Add(time.Duration(i+1) * time.Second)}}); err != nil {
			t.Errorf("Touch = %v", err)
		}
		cur.Description = fmt.Sprint("round ", i)
		if err := s.Update(ctx, cur); err != nil {
			t.Errorf("Update = %v", err)
			cur = get(t, s, tok.ID)
		}
	}
	done.Store(true)
	wg.Wait()
	if n := misses.Load(); n > 0 {
		t.Errorf("GetByHash failed %d times while the token was touched and updated, want 0", n)
	}
}
