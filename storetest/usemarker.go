package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// markUsedClauses check the optional UseMarker capability; they skip on a
// store without it.
func markUsedClauses() []clause {
	return []clause{
		{"SetsLastUsed", testMarkUsedSets},
		{"NeverMovesBackwards", testMarkUsedNeverBackwards},
		{"FindsPrevHash", testMarkUsedPrevHash},
		{"UnknownHashIsNoError", testMarkUsedUnknown},
		{"ConcurrentKeepsTheLatest", testMarkUsedConcurrent},
	}
}

// markUsed records a use, failing the test on error.
func markUsed(t testing.TB, m apitoken.UseMarker, h apitoken.Hash, at time.Time) {
	t.Helper()
	if err := m.MarkUsed(t.Context(), h, at); err != nil {
		t.Fatalf("MarkUsed error = %v, want nil", err)
	}
}

func testMarkUsedSets(t *testing.T, s apitoken.Store) {
	m := capability[apitoken.UseMarker](t, s)
	a, b := newToken(t), newToken(t)
	create(t, s, a, b)
	markUsed(t, m, a.Hash, now.Add(time.Hour))
	got := get(t, s, a.ID)
	wantTime(t, "Get(marked).LastUsedAt", got.LastUsedAt, now.Add(time.Hour))
	wantTime(t, "GetByHash(marked).LastUsedAt", getByHash(t, s, a.Hash, "hash of the marked token").LastUsedAt, now.Add(time.Hour))
	wantTime(t, "Get(unmarked).LastUsedAt", get(t, s, b.ID).LastUsedAt, time.Time{})
	want := a.Clone()
	want.LastUsedAt = now.Add(time.Hour)
	wantSame(t, "Get after MarkUsed (Version and UpdatedAt unchanged)", got, want)
}

func testMarkUsedNeverBackwards(t *testing.T, s apitoken.Store) {
	m := capability[apitoken.UseMarker](t, s)
	tok := newToken(t)
	create(t, s, tok)
	markUsed(t, m, tok.Hash, now.Add(2*time.Hour))
	markUsed(t, m, tok.Hash, now.Add(time.Hour))
	wantTime(t, "LastUsedAt after marks at +2h, then +1h", get(t, s, tok.ID).LastUsedAt, now.Add(2*time.Hour))
	markUsed(t, m, tok.Hash, time.Time{})
	wantTime(t, "LastUsedAt after a mark at the zero time", get(t, s, tok.ID).LastUsedAt, now.Add(2*time.Hour))
	touch(t, s, apitoken.Use{ID: tok.ID, At: now.Add(90 * time.Minute)})
	wantTime(t, "LastUsedAt after an earlier Touch", get(t, s, tok.ID).LastUsedAt, now.Add(2*time.Hour))
}

func testMarkUsedPrevHash(t *testing.T, s apitoken.Store) {
	m := capability[apitoken.UseMarker](t, s)
	tok := newToken(t)
	tok.PrevHash, tok.PrevExpiresAt = randomHash(), now.Add(time.Hour)
	create(t, s, tok)
	markUsed(t, m, tok.PrevHash, now.Add(time.Minute))
	wantTime(t, "LastUsedAt after a mark by the previous hash", get(t, s, tok.ID).LastUsedAt, now.Add(time.Minute))
}

func testMarkUsedUnknown(t *testing.T, s apitoken.Store) {
	m := capability[apitoken.UseMarker](t, s)
	tok := newToken(t)
	create(t, s, tok)
	markUsed(t, m, randomHash(), now.Add(time.Hour))
	wantSame(t, "Get after marking an unknown hash", get(t, s, tok.ID), tok)
}

// testMarkUsedConcurrent marks one token from many goroutines, in no
// particular order, while others read and update it: the latest use wins,
// and no update is lost. Run it under -race.
func testMarkUsedConcurrent(t *testing.T, s apitoken.Store) {
	m := capability[apitoken.UseMarker](t, s)
	ctx := t.Context()
	tok := newToken(t)
	create(t, s, tok)
	const workers, marks = 8, 100
	latest := now.Add(workers * marks * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers+2)
	for w := range workers {
		wg.Go(func() {
			for i := range marks {
				// Worker w marks +1s … +latest, interleaved with the others.
				if err := m.MarkUsed(ctx, tok.Hash, now.Add(time.Duration(w+1+i*workers)*time.Second)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range marks {
			if _, err := s.GetByHash(ctx, tok.Hash); err != nil {
				errs <- err
				return
			}
		}
	})
	renames := 0
	wg.Go(func() {
		for renames < 10 {
			u, err := s.Get(ctx, tok.ID)
			if err != nil {
				errs <- err
				return
			}
			u.Name = "renamed"
			switch err := s.Update(ctx, u); {
			case err == nil:
				renames++
			case !errors.Is(err, apitoken.ErrConflict):
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent MarkUsed, GetByHash and Update: %v", err)
	}
	got := get(t, s, tok.ID)
	wantTime(t, "LastUsedAt after concurrent marks", got.LastUsedAt, latest)
	if got.Version != tok.Version+10 || got.Name != "renamed" {
		t.Errorf("after 10 updates racing marks: Version %d, Name %q; want %d, %q", got.Version, got.Name, tok.Version+10, "renamed")
	}
}
