package apitoken_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

func TestPrune(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	pr, err := apitoken.NewPruner(e.store, testPolicy(), apitoken.WithClock(e.clock.Now), apitoken.WithBatchSize(2))
	require.NoError(t, err)

	idle := make([]string, 3)
	for i := range idle {
		_, tok := e.issue(t, orgSpec())
		idle[i] = tok.ID
	}
	used, usedTok := e.issue(t, orgSpec())
	short := orgSpec()
	short.Lifetime = apitoken.Days(1)
	_, expiredTok := e.issue(t, short)
	_, revokedTok := e.issue(t, orgSpec())

	e.clock.Advance(2 * 24 * time.Hour)
	require.NoError(t, e.iss.Revoke(ctx, revokedTok.ID))
	st, err := pr.Prune(ctx)
	if err != nil || st != (apitoken.PruneStats{}) {
		t.Fatalf("early Prune = %+v, %v; want nothing", st, err)
	}
	// 89 days in: used keeps the token alive.
	e.clock.Advance(87 * 24 * time.Hour)
	mustValidate(t, e, used)
	require.NoError(t, e.v.Flush(ctx))
	// Past idle timeout + margin for the others; past retention for the ended.
	e.clock.Advance(apitoken.DefaultIdleTimeout - 89*24*time.Hour + 2*24*time.Hour + apitoken.DefaultPruneMargin)
	st, err = pr.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Idle+st.Expired != 5 {
		t.Errorf("Prune = %+v, want 5 tokens removed", st)
	}
	for _, id := range append(idle, expiredTok.ID, revokedTok.ID) {
		if _, err := e.iss.Get(ctx, id); !errors.Is(err, apitoken.ErrNotFound) {
			t.Errorf("token %s after prune: %v, want ErrNotFound", id, err)
		}
	}
	if _, err := e.iss.Get(ctx, usedTok.ID); err != nil {
		t.Errorf("used token pruned: %v", err)
	}
}

// TestPruneKeepsRecentUseOfAnotherReplica: a use that only a Validator's
// memory knows about survives pruning when the Pruner flushes it first.
func TestPruneFlushFirst(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	s, tok := e.issue(t, orgSpec())
	e.clock.Advance(apitoken.DefaultIdleTimeout - time.Minute)
	mustValidate(t, e, s) // not flushed
	e.clock.Advance(2 * apitoken.DefaultPruneMargin)

	pr, err := apitoken.NewPruner(e.store, testPolicy(), apitoken.WithClock(e.clock.Now), apitoken.WithFlushFirst(e.v))
	require.NoError(t, err)
	if st, err := pr.Prune(ctx); err != nil || st.Idle != 0 {
		t.Fatalf("Prune = %+v, %v; want the used token kept", st, err)
	}
	if _, err := e.iss.Get(ctx, tok.ID); err != nil {
		t.Errorf("Get = %v", err)
	}
}

func TestPruneIdleDisabled(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.IdleTimeout = apitoken.NoIdleTimeout
	e := newEnv(t, pol)
	s, _ := e.issue(t, orgSpec())
	e.clock.Advance(150 * 24 * time.Hour)
	pr, _ := apitoken.NewPruner(e.store, pol, apitoken.WithClock(e.clock.Now))
	if st, err := pr.Prune(ctx); err != nil || st.Idle != 0 {
		t.Errorf("Prune = %+v, %v; want nothing idle", st, err)
	}
	if _, err := e.v.Validate(ctx, s, readDev); err != nil {
		t.Errorf("Validate = %v, want nil (no idle timeout)", err)
	}
}

func TestPrunerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memstore.New()
		pol := testPolicy()
		pol.ExpiredRetention = time.Hour
		clock := newClock()
		ticks := make(chan time.Time)
		iss, _ := apitoken.NewIssuer(store, pol, apitoken.WithClock(clock.Now))
		pr, err := apitoken.NewPruner(store, pol, apitoken.WithClock(clock.Now), apitoken.WithTicks(ticks))
		require.NoError(t, err)
		spec := orgSpec()
		spec.Lifetime = apitoken.Minutes(30)
		for range 3 {
			if _, _, err := iss.Issue(t.Context(), spec); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- pr.Run(ctx, time.Hour) }()
		synctest.Wait()
		if store.Len() != 3 {
			t.Fatalf("after the first pass: %d tokens, want 3", store.Len())
		}
		clock.Advance(2 * time.Hour) // expired 90 minutes ago: past the retention
		ticks <- time.Time{}
		synctest.Wait() // until Run has pruned and waits again
		if store.Len() != 0 {
			t.Errorf("after 2h: %d tokens, want 0", store.Len())
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if err := pr.Run(t.Context(), 0); err == nil {
			t.Error("Run(0) = nil, want error")
		}
	})
}

// TestPendingCountsWhatPruneDeletes: a dry run counts exactly what the
// prune then deletes, and deletes nothing itself.
func TestPendingCountsWhatPruneDeletes(t *testing.T) {
	e := newEnv(t, testPolicy())
	for range 3 {
		e.issue(t, orgSpec())
	}
	spec := orgSpec()
	spec.Lifetime = apitoken.Hours(1)
	e.issue(t, spec)
	e.clock.Advance(apitoken.DefaultIdleTimeout + 2*time.Hour) // all idle; the short one also ended
	_, fresh := e.issue(t, orgSpec())
	pr, err := apitoken.NewPruner(e.store, testPolicy(), apitoken.WithClock(e.clock.Now))
	require.NoError(t, err)
	pending, err := pr.Pending(t.Context())
	require.NoError(t, err)
	assert.Equal(t, apitoken.PruneStats{Idle: 4}, pending, "counted idle first")
	_, err = e.iss.Get(t.Context(), fresh.ID)
	require.NoError(t, err)
	page, err := e.iss.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	assert.Len(t, page.Tokens, 5, "a dry run deletes nothing")
	st, err := pr.Prune(t.Context())
	require.NoError(t, err)
	assert.Equal(t, pending, st)
}
