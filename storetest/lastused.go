package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses of the last-used time as several replicas write it: Touch's "the
// later of its stored value and Use.At (never earlier)" and Update's
// "LastUsedAt is kept monotone", seen through Get while the writes race and
// through Prune, whose idle criterion must see the same, latest, instant.

func lastUsedClauses() []clause {
	return []clause{
		{"OlderWriteKeepsIdleOrder", testLastUsedIdleOrder},
		{"OutOfOrderReplicaFlushes", testLastUsedReplicas},
	}
}

// testLastUsedIdleOrder: a touch or an update carrying an older last use,
// landing after a newer touch, leaves the token used at the newer instant
// for Prune too: an idle cut between the two instants deletes nothing.
func testLastUsedIdleOrder(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	prune := func(what string, idleBefore time.Time, want int) {
		t.Helper()
		n, err := s.Prune(ctx, apitoken.PruneRequest{IdleBefore: idleBefore, Limit: 10})
		if err != nil || n != want {
			t.Errorf("%s: Prune(IdleBefore %v) = %d, %v; want %d, nil", what, fmtTime(idleBefore), n, err, want)
		}
	}

	byTouch := newToken(t)
	create(t, s, byTouch)
	touch(t, s, apitoken.Use{ID: byTouch.ID, At: now.Add(2 * time.Hour)})
	touch(t, s, apitoken.Use{ID: byTouch.ID, At: now.Add(time.Hour)})
	prune("after touches at +2h, then +1h", now.Add(90*time.Minute), 0)
	wantTime(t, "LastUsedAt after touches at +2h, then +1h", get(t, s, byTouch.ID).LastUsedAt, now.Add(2*time.Hour))

	byUpdate := newToken(t)
	create(t, s, byUpdate)
	touch(t, s, apitoken.Use{ID: byUpdate.ID, At: now.Add(time.Hour)})
	stale := get(t, s, byUpdate.ID) // LastUsedAt +1h
	touch(t, s, apitoken.Use{ID: byUpdate.ID, At: now.Add(3 * time.Hour)})
	stale.Description = "changed"
	if err := s.Update(ctx, stale); err != nil {
		t.Fatalf("Update(read before a later touch) error = %v, want nil", err)
	}
	prune("after a touch at +3h, then an update carrying +1h", now.Add(90*time.Minute), 0)
	wantTime(t, "LastUsedAt after a touch at +3h, then an update carrying +1h", get(t, s, byUpdate.ID).LastUsedAt, now.Add(3*time.Hour))

	prune("past both last uses", now.Add(4*time.Hour), 2)
}

// testLastUsedReplicas: four replicas flush their uses of the same tokens
// in batches, each newest batch first, while an updater writes records it
// read earlier and a reader polls: no read ever sees a token's LastUsedAt
// earlier than a previous read did, every token ends at the latest use
// any replica flushed, and Prune's idle criterion agrees.
func testLastUsedReplicas(t *testing.T, s apitoken.Store) {
	const replicas, batches, tokens = 4, 25, 8
	ctx := t.Context()
	toks := make([]*apitoken.Token, tokens)
	for i := range toks {
		toks[i] = newToken(t)
	}
	create(t, s, toks...)
	// Replica r's batch b uses token i at second (b*replicas+r)*tokens+i+1:
	// replicas interleave in time, and each flushes its newest batch first.
	at := func(r, b, i int) time.Time {
		return now.Add(time.Duration((b*replicas+r)*tokens+i+1) * time.Second)
	}
	latest := func(i int) time.Time { return at(replicas-1, batches-1, i) }

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var observeErr string
	wg.Go(func() { // the reader
		seen := make([]time.Time, tokens)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			i := k % tokens
			got, err := s.Get(ctx, toks[i].ID)
			if err != nil {
				observeErr = fmt.Sprintf("Get during the flushes error = %v, want nil", err)
				return
			}
			if got.LastUsedAt.Before(seen[i]) {
				observeErr = fmt.Sprintf("token %d: LastUsedAt read %v after an earlier read saw %v: it moved backwards",
					i, fmtTime(got.LastUsedAt), fmtTime(seen[i]))
				return
			}
			seen[i] = got.LastUsedAt
		}
	})
	var updateErr string
	wg.Go(func() { // the updater: each record written back after the flushes moved on
		for k := 0; k < 2*tokens; k++ {
			select {
			case <-stop:
				return
			default:
			}
			tok, err := s.Get(ctx, toks[k%tokens].ID)
			if err == nil {
				tok.Description = fmt.Sprint("update ", k)
				err = s.Update(ctx, tok)
			}
			if err != nil && !errors.Is(err, apitoken.ErrConflict) {
				updateErr = fmt.Sprintf("Update during the flushes error = %v, want nil or ErrConflict", err)
				return
			}
		}
	})
	race(replicas, func(r int) {
		for b := batches - 1; b >= 0; b-- {
			uses := make([]apitoken.Use, tokens)
			for i := range uses {
				uses[i] = apitoken.Use{ID: toks[i].ID, At: at(r, b, i)}
			}
			if err := s.Touch(ctx, uses); err != nil {
				t.Errorf("replica %d: Touch error = %v, want nil", r, err)
				return
			}
		}
	})
	close(stop)
	wg.Wait()
	if observeErr != "" {
		t.Error(observeErr)
	}
	if updateErr != "" {
		t.Error(updateErr)
	}
	for i, tok := range toks {
		wantTime(t, fmt.Sprintf("token %d: LastUsedAt after %d replicas flushed newest first", i, replicas), get(t, s, tok.ID).LastUsedAt, latest(i))
	}
	if n, err := s.Prune(ctx, apitoken.PruneRequest{IdleBefore: latest(0), Limit: 100}); err != nil || n != 0 {
		t.Errorf("Prune(IdleBefore: the earliest token's latest use) = %d, %v; want 0, nil", n, err)
	}
}
