package storefaults

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// timedPrunes is a Store whose Prune calls (one batch each) are timed and
// counted.
type timedPrunes struct {
	apitoken.Store
	mu      sync.Mutex
	batches int
	longest time.Duration
}

func (s *timedPrunes) Prune(ctx context.Context, r apitoken.PruneRequest) (int, error) {
	start := time.Now()
	n, err := s.Store.Prune(ctx, r)
	d := time.Since(start)
	s.mu.Lock()
	s.batches++
	s.longest = max(s.longest, d)
	s.mu.Unlock()
	return n, err
}

// p99 returns the 99th percentile of ds (which it sorts).
func p99(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[(len(ds)*99)/100]
}

// PruneFigures is what one run of PrunersAtScale measured.
type PruneFigures struct {
	Deleted, Errors  int           // deletions and errors the Pruners report
	Batches          int           // Prune calls on the store
	LongestBatch     time.Duration // the longest Prune call
	PruneTime        time.Duration // from the first Pruner's start to the last one's end
	Before, During   time.Duration // validation p99
	NBefore, NDuring int           // validations measured
}

// String returns the figures as PrunersAtScale logs them.
func (f PruneFigures) String() string {
	return fmt.Sprintf("deleted %d, errors %d, %d batches, longest batch %v, pruning took %v; validation p99 before %v (%d validations), during %v (%d validations)",
		f.Deleted, f.Errors, f.Batches, f.LongestBatch.Round(time.Microsecond), f.PruneTime.Round(time.Millisecond),
		f.Before.Round(time.Microsecond), f.NBefore, f.During.Round(time.Microsecond), f.NDuring)
}

// PrunersAtScale logs seed, the time it took to seed fx.Store with n idle
// tokens (its only tokens), runs four Pruners at once over it, logs what
// they did on server (a name for the log), and checks it: exactly n
// deletions in all, no error, every batch under 1 s. The caller checks
// that no idle token is left. It returns the figures it logged.
func PrunersAtScale(t *testing.T, fx Fixture, server string, n int, seed time.Duration) PruneFigures {
	t.Helper()
	t.Logf("seeded %d idle tokens in %v", n, seed.Round(time.Millisecond))
	f := measurePruners(t, fx, 4)
	t.Logf("4 pruners over %d idle tokens on %s: %s", n, server, f)
	assert.Equal(t, n, f.Deleted, "deletions the 4 pruners report in all")
	assert.Zero(t, f.Errors, "pruner errors")
	assert.Less(t, f.LongestBatch, time.Second, "longest Prune batch")
	return f
}

// P99Ratios runs run(t, n) as subtests Round1 to Round<rounds>, and returns
// each round's ratio of the validation p99 during the prune to the p99
// before it, sorted.
func P99Ratios(t *testing.T, rounds, n int, run func(t *testing.T, n int) PruneFigures) []float64 {
	t.Helper()
	var ratios []float64
	for round := range rounds {
		t.Run(fmt.Sprint("Round", round+1), func(t *testing.T) {
			f := run(t, n)
			ratios = append(ratios, float64(f.During)/float64(f.Before))
		})
	}
	slices.Sort(ratios)
	return ratios
}

// measurePruners runs pruners Pruners at once over fx.Store, which holds
// idle tokens only, while one goroutine validates live tokens it issues
// first, and returns what it measured: the deletions and errors the
// Pruners report, each Prune batch's duration, and the validation p99
// before the prune (10,000 validations) and during it.
func measurePruners(t *testing.T, fx Fixture, pruners int) PruneFigures {
	t.Helper()
	ctx := t.Context()
	v := fx.NewValidator(t)
	secrets := make([]string, 200)
	for i := range secrets {
		secrets[i], _ = fx.Issue(t)
	}
	validate := func(i int) time.Duration {
		start := time.Now()
		_, err := v.Validate(ctx, secrets[i%len(secrets)], fx.Request)
		d := time.Since(start)
		require.NoError(t, err, "Validate(live token) during the prune test")
		return d
	}
	for i := range 200 { // warm up connections and caches
		validate(i)
	}
	before := make([]time.Duration, 10_000)
	for i := range before {
		before[i] = validate(i)
	}

	timed := &timedPrunes{Store: fx.Store}
	prs := make([]*apitoken.Pruner, pruners)
	for i := range prs {
		var err error
		prs[i], err = apitoken.NewPruner(timed, fx.Policy)
		require.NoError(t, err)
	}
	var f PruneFigures
	var during []time.Duration
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for _, pr := range prs {
		wg.Go(func() {
			st, err := pr.Prune(ctx)
			mu.Lock()
			defer mu.Unlock()
			f.Deleted += st.Idle + st.Expired
			if err != nil {
				f.Errors++
				t.Errorf("Pruner.Prune error = %v, want nil", err)
			}
		})
	}
	go func() { wg.Wait(); f.PruneTime = time.Since(start); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			during = append(during, validate(i))
			continue
		}
		break
	}
	f.Batches, f.LongestBatch = timed.batches, timed.longest
	f.Before, f.NBefore = p99(before), len(before)
	f.During, f.NDuring = p99(during), len(during)
	for _, secret := range secrets {
		_, err := v.Validate(ctx, secret, fx.Request)
		assert.NoError(t, err, "Validate(live token) after the prune")
	}
	return f
}
