package storefaults

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// ReplicaFlushesOutOfOrder runs four replica Validators, each on its own
// clock, on fx.Store, and checks that a token's stored last-used time never
// moves backwards when their flushes land out of order: first one after
// another, newest first; then 20 rounds of uses at random instants (over a
// flush interval apart) flushed at once, while a reader checks that no
// read sees an earlier time than the read before it.
func ReplicaFlushesOutOfOrder(t *testing.T, fx Fixture) {
	const replicas, tokens, rounds = 4, 8, 20
	ctx := t.Context()
	s := fx.Store
	base := time.Now().UTC().Truncate(time.Second)
	secrets := make([]string, tokens)
	ids := make([]string, tokens)
	for i := range secrets {
		var tok *apitoken.Token
		secrets[i], tok = fx.Issue(t)
		ids[i] = tok.ID
	}
	clocks := make([]atomic.Int64, replicas)
	vs := make([]*apitoken.Validator, replicas)
	for r := range vs {
		vs[r] = fx.NewValidator(t, apitoken.WithClock(func() time.Time { return time.Unix(0, clocks[r].Load()) }))
	}
	use := func(r int, at time.Time) {
		clocks[r].Store(at.UnixNano())
		for _, secret := range secrets {
			_, err := vs[r].Validate(ctx, secret, fx.Request)
			require.NoError(t, err, "replica %d: Validate", r)
		}
	}
	lastUsed := func(i int) time.Time {
		tok, err := s.Get(ctx, ids[i])
		require.NoError(t, err)
		return tok.LastUsedAt
	}

	// Replica r uses every token at base+r+1 minutes; the newest flushes
	// first.
	for r := range replicas {
		use(r, base.Add(time.Duration(r+1)*time.Minute))
	}
	for r := replicas - 1; r >= 0; r-- {
		require.NoError(t, vs[r].Flush(ctx), "replica %d: Flush", r)
		for i := range tokens {
			assert.True(t, lastUsed(i).Equal(base.Add(replicas*time.Minute)),
				"token %d: LastUsedAt after replicas %d..%d flushed, newest first = %v, want base+%dm", i, replicas-1, r, lastUsed(i), replicas)
		}
	}

	// Uses at random instants, flushed by all four at once. Each is over
	// a flush interval past the stored time, or the Validator would not
	// record it.
	newest := base.Add(replicas * time.Minute)
	for round := range rounds {
		for r := range replicas {
			at := newest.Add(apitoken.DefaultFlushInterval + time.Duration(1+rand.IntN(1000))*time.Millisecond)
			use(r, at)
		}
		latest := time.Time{}
		for r := range replicas {
			if at := time.Unix(0, clocks[r].Load()).UTC(); at.After(latest) {
				latest = at
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var backwards atomic.Value
		wg.Go(func() {
			seen := make([]time.Time, tokens)
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				i := k % tokens
				tok, err := s.Get(ctx, ids[i])
				if err != nil {
					backwards.Store(fmt.Sprintf("Get during the flushes: %v", err))
					return
				}
				got := tok.LastUsedAt
				if got.Before(seen[i]) {
					backwards.Store(fmt.Sprintf("token %d: LastUsedAt read %v after %v", i, got, seen[i]))
					return
				}
				seen[i] = got
			}
		})
		var flushes sync.WaitGroup
		for r := range replicas {
			flushes.Go(func() { assert.NoError(t, vs[r].Flush(ctx), "round %d: replica %d: Flush", round, r) })
		}
		flushes.Wait()
		close(stop)
		wg.Wait()
		if msg := backwards.Load(); msg != nil {
			t.Errorf("round %d: LastUsedAt moved backwards during concurrent flushes: %s", round, msg)
		}
		for i := range tokens {
			assert.True(t, lastUsed(i).Equal(latest.Truncate(time.Microsecond)),
				"round %d: token %d: LastUsedAt after 4 concurrent flushes = %v, want the latest use %v", round, i, lastUsed(i), latest)
		}
		newest = latest
	}
}
