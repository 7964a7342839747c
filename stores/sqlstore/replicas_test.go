package sqlstore_test

import (
	"database/sql"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
)

// TestReplicas runs what several app replicas do at once on one database:
// pruners deleting the same idle tokens, and last-used flushes touching
// the same tokens in different orders. Each token is deleted exactly
// once, nothing deadlocks or fails, and every last-used time ends at the
// latest.
func TestReplicas(t *testing.T) {
	const replicas = 4
	day := 24 * time.Hour
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ *sql.DB) {
		ctx := t.Context()
		t.Run("Prune", func(t *testing.T) {
			const idle, active = 150, 20
			for i := range idle + active {
				tok := crashToken(now.Add(-100 * day))
				if i >= idle {
					tok.CreatedAt = now
				}
				if err := s.Create(ctx, tok, 0); err != nil {
					t.Fatalf("Create: %v", err)
				}
			}
			var deleted atomic.Int64
			var wg sync.WaitGroup
			for r := range replicas {
				wg.Go(func() {
					for {
						n, err := s.Prune(ctx, apitoken.PruneRequest{IdleBefore: now.Add(-90 * day), Limit: 7})
						if err != nil {
							t.Errorf("replica %d: Prune: %v", r, err)
							return
						}
						deleted.Add(int64(n))
						if n < 7 {
							return
						}
					}
				})
			}
			wg.Wait()
			// A pruner may stop early when the others hold the rest
			// (SKIP LOCKED); one more pass finds nothing left.
			n, err := s.Prune(ctx, apitoken.PruneRequest{IdleBefore: now.Add(-90 * day), Limit: 1000})
			if err != nil || n != 0 {
				t.Errorf("Prune after %d concurrent pruners finished = %d, %v; want 0, nil", replicas, n, err)
			}
			if got := deleted.Load(); got != idle {
				t.Errorf("%d concurrent pruners deleted %d tokens in all, want %d (each idle token once)", replicas, got, idle)
			}
			p, err := s.List(ctx, apitoken.Filter{Limit: apitoken.MaxPageSize})
			if err != nil || len(p.Tokens) != active {
				t.Errorf("List after pruning = %d tokens, %v; want the %d active ones", len(p.Tokens), err, active)
			}
		})
		t.Run("Touch", func(t *testing.T) {
			const n, rounds = 300, 5
			ids := make([]string, n)
			for i := range ids {
				tok := crashToken(now)
				if err := s.Create(ctx, tok, 0); err != nil {
					t.Fatalf("Create: %v", err)
				}
				ids[i] = tok.ID
			}
			last := now.Add(time.Duration(replicas*rounds) * time.Second)
			var wg sync.WaitGroup
			for r := range replicas {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(r), 1))
					for k := range rounds {
						// Replica r flushes at seconds r+1, r+1+replicas, …,
						// each batch in its own order.
						at := now.Add(time.Duration(k*replicas+r+1) * time.Second)
						uses := make([]apitoken.Use, n)
						for i, id := range ids {
							uses[i] = apitoken.Use{ID: id, At: at}
						}
						rng.Shuffle(n, func(i, j int) { uses[i], uses[j] = uses[j], uses[i] })
						if err := s.Touch(ctx, uses); err != nil {
							t.Errorf("replica %d: Touch: %v", r, err)
							return
						}
					}
				})
			}
			wg.Wait()
			for _, id := range []string{ids[0], ids[n/2], ids[n-1]} {
				tok, err := s.Get(ctx, id)
				if err != nil {
					t.Fatalf("Get after concurrent flushes: %v", err)
				}
				if !tok.LastUsedAt.Equal(last) {
					t.Errorf("LastUsedAt after concurrent flushes = %v, want %v (the latest)", tok.LastUsedAt, last)
				}
			}
		})
	})
}
