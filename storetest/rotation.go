package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// The clause of concurrent rotations at the store: Update replacing the
// hash, checked while the rotations run.

func rotationClauses() []clause {
	return []clause{{"ReplacedHashGoneOnceUpdateReturns", testConcurrentRotation}}
}

// testConcurrentRotation: 50 goroutines rotate one token at once, each
// with Get and an Update that gives it a new Hash, again after each
// ErrConflict, until its Update succeeds (so the 50 rotations chain: 0
// lost updates). GetByHash "returns the token whose Hash, or nonzero
// PrevHash, equals h, or ErrNotFound", so once an Update that dropped a
// hash has returned, GetByHash of that hash is ErrNotFound. Two lookup
// goroutines check every dropped hash while the rotations run, from the
// first successful rotation on; every result they get for the first hash
// is the token holding it or ErrNotFound. Run without a grace period
// (each Update drops the hash it replaces: the old secret is refused from
// the first rotation on) and with one (each Update keeps the hash it
// replaces as PrevHash and drops the previous PrevHash). At the end, the
// Version has risen by 50 and only the last hash (and, with grace, the
// one before it) is found.
func testConcurrentRotation(t *testing.T, s apitoken.Store) {
	for _, grace := range []bool{false, true} {
		phase := "without grace"
		if grace {
			phase = "with grace"
		}
		rotateConcurrently(t, s, phase, grace)
		if t.Failed() {
			return
		}
	}
}

func rotateConcurrently(t *testing.T, s apitoken.Store, phase string, grace bool) {
	const rotators, lookups, maxAttempts = 50, 2, 1000
	ctx := t.Context()
	tok := newToken(t)
	create(t, s, tok)

	var mu sync.Mutex
	dropping := sync.NewCond(&mu)          // broadcast when dropped grows or rotating ends
	var dropped []apitoken.Hash            // by Updates that returned
	byVersion := map[int64]apitoken.Hash{} // the Hash each successful Update wrote
	issued := []apitoken.Hash{tok.Hash}
	rotating := true
	var during, after atomic.Int64 // checks of dropped hashes while rotating, after
	var errOnce sync.Once
	var lookupErr error
	fail := func(err error) { errOnce.Do(func() { lookupErr = err }) }

	var wg sync.WaitGroup
	for range lookups {
		wg.Go(func() {
			seen := 0
			for last := false; !last; {
				// Wait for an Update to drop a hash, then check the hashes
				// dropped since this goroutine's last pass and one dropped
				// earlier: each dropped hash is looked up soon after its
				// Update returned, the earlier ones again now and then.
				// After the rotations, one more pass.
				mu.Lock()
				for rotating && len(dropped) == seen {
					dropping.Wait()
				}
				last = !rotating
				check := slices.Clone(dropped[seen:])
				if seen > 0 {
					check = append(check, dropped[rand.N(seen)])
				}
				seen = len(dropped)
				mu.Unlock()
				got, err := s.GetByHash(ctx, tok.Hash)
				switch {
				case errors.Is(err, apitoken.ErrNotFound):
				case err != nil:
					fail(fmt.Errorf("GetByHash(the first hash) during the rotations error = %w, want the token or %w", err, apitoken.ErrNotFound))
					return
				case got.ID != tok.ID || (got.Hash != tok.Hash && got.PrevHash != tok.Hash):
					fail(fmt.Errorf("GetByHash(the first hash) during the rotations = %s, which does not hold it", describe(got)))
					return
				}
				for _, h := range check {
					got, err := s.GetByHash(ctx, h)
					if !errors.Is(err, apitoken.ErrNotFound) {
						fail(fmt.Errorf("GetByHash(a hash an Update dropped, after that Update returned) = %s, %v; want %w", describe(got), err, apitoken.ErrNotFound))
						return
					}
					if last {
						after.Add(1)
					} else {
						during.Add(1)
					}
				}
			}
		})
	}

	errs := make([]error, rotators)
	var attempts atomic.Int64
	race(rotators, func(i int) {
		for attempt := 1; ; attempt++ {
			attempts.Add(1)
			cur, err := s.Get(ctx, tok.ID)
			if err != nil {
				errs[i] = fmt.Errorf("attempt %d: Get error = %w, want nil", attempt, err)
				return
			}
			next := cur.Clone()
			next.Hash = randomHash()
			if grace {
				next.PrevHash, next.PrevExpiresAt = cur.Hash, now.Add(time.Hour)
			} else {
				next.PrevHash, next.PrevExpiresAt = apitoken.Hash{}, time.Time{}
			}
			mu.Lock()
			issued = append(issued, next.Hash)
			mu.Unlock()
			err = s.Update(ctx, next)
			if errors.Is(err, apitoken.ErrConflict) && attempt < maxAttempts {
				continue
			}
			if err != nil {
				errs[i] = fmt.Errorf("attempt %d: Update with a new Hash error = %w, want nil or %w", attempt, err, apitoken.ErrConflict)
				return
			}
			mu.Lock()
			byVersion[next.Version] = next.Hash
			if !cur.PrevHash.IsZero() {
				dropped = append(dropped, cur.PrevHash)
			}
			if !grace {
				dropped = append(dropped, cur.Hash)
			}
			dropping.Broadcast()
			mu.Unlock()
			return
		}
	})
	mu.Lock()
	rotating = false
	dropping.Broadcast()
	mu.Unlock()
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: rotator %d of %d: %v", phase, i, rotators, err)
		}
	}
	if lookupErr != nil {
		t.Errorf("%s: %v", phase, lookupErr)
	}
	if during.Load() == 0 {
		t.Logf("%s: no dropped hash was checked while the rotations ran (the machine is slow); %d after", phase, after.Load())
	}
	got := get(t, s, tok.ID)
	if want := tok.Version + rotators; got.Version != want || len(byVersion) != rotators {
		t.Errorf("%s: after %d rotations from version %d: Version %d, %d successful Updates; want %d, %d (0 lost updates)",
			phase, rotators, tok.Version, got.Version, len(byVersion), want, rotators)
	}
	live := map[apitoken.Hash]bool{got.Hash: true}
	if got.Hash != byVersion[got.Version] {
		t.Errorf("%s: stored Hash is not the one the Update that wrote version %d gave", phase, got.Version)
	}
	switch {
	case grace && got.PrevHash != byVersion[got.Version-1]:
		t.Errorf("%s: stored PrevHash is not the Hash of version %d", phase, got.Version-1)
	case grace:
		live[got.PrevHash] = true
	case !got.PrevHash.IsZero():
		t.Errorf("%s: stored PrevHash is set, want zero", phase)
	}
	found := 0
	for _, h := range issued {
		_, err := s.GetByHash(ctx, h)
		switch {
		case err == nil && !live[h]:
			found++
		case err != nil && !errors.Is(err, apitoken.ErrNotFound):
			t.Errorf("%s: GetByHash after the rotations error = %v, want nil or %v", phase, err, apitoken.ErrNotFound)
		case err != nil && live[h]:
			t.Errorf("%s: GetByHash(a hash the token holds) after the rotations error = %v, want the token", phase, err)
		}
	}
	if found > 0 {
		t.Errorf("%s: %d of %d hashes written during the rotations are still found besides the token's own, want 0", phase, found, len(issued))
	}
	t.Logf("%s: %d rotations in %d attempts; %d lookups of dropped hashes while they ran, %d after, all %v",
		phase, rotators, attempts.Load(), during.Load(), after.Load(), apitoken.ErrNotFound)
}
