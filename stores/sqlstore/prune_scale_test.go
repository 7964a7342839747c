package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// timedPrunes is a Store whose Prune calls (one batch statement each on
// PostgreSQL) are timed and counted.
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

// pruneFigures is what one run of prunersAtScale measured.
type pruneFigures struct {
	deleted, errors  int
	batches          int
	longestBatch     time.Duration
	pruneTime        time.Duration
	before, during   time.Duration // validation p99
	nBefore, nDuring int           // validations measured
}

func (f pruneFigures) String() string {
	return fmt.Sprintf("deleted %d, errors %d, %d batches, longest batch %v, pruning took %v; validation p99 before %v (%d validations), during %v (%d validations)",
		f.deleted, f.errors, f.batches, f.longestBatch.Round(time.Microsecond), f.pruneTime.Round(time.Millisecond),
		f.before.Round(time.Microsecond), f.nBefore, f.during.Round(time.Microsecond), f.nDuring)
}

// pruneScalePolicy is the policy of the prune-at-scale tests: tokens
// unused for a day are idle.
var pruneScalePolicy = func() apitoken.Policy {
	p := policy
	p.IdleTimeout = 24 * time.Hour
	return p
}()

// prunersAtScale runs pruners Pruners at once over store s, which holds
// idle tokens only, while one goroutine validates live tokens it issues
// first, and returns what it measured: the deletions and errors the
// Pruners report, each Prune batch's duration, and the validation p99
// before the prune (10,000 validations) and during it.
func prunersAtScale(t *testing.T, s apitoken.Store, pruners int) pruneFigures {
	t.Helper()
	ctx := t.Context()
	iss, err := apitoken.NewIssuer(s, pruneScalePolicy)
	require.NoError(t, err)
	v, err := apitoken.NewValidator(s, pruneScalePolicy)
	require.NoError(t, err)
	t.Cleanup(func() { v.Close(context.Background()) })
	secrets := make([]string, 200)
	for i := range secrets {
		secrets[i], _ = issue(t, iss)
	}
	validate := func(i int) time.Duration {
		start := time.Now()
		_, err := v.Validate(ctx, secrets[i%len(secrets)], readDevices)
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

	timed := &timedPrunes{Store: s}
	prs := make([]*apitoken.Pruner, pruners)
	for i := range prs {
		prs[i], err = apitoken.NewPruner(timed, pruneScalePolicy)
		require.NoError(t, err)
	}
	var f pruneFigures
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
			f.deleted += st.Idle + st.Expired
			if err != nil {
				f.errors++
				t.Errorf("Pruner.Prune error = %v, want nil", err)
			}
		})
	}
	go func() { wg.Wait(); f.pruneTime = time.Since(start); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			during = append(during, validate(i))
			continue
		}
		break
	}
	f.batches, f.longestBatch = timed.batches, timed.longest
	f.before, f.nBefore = p99(before), len(before)
	f.during, f.nDuring = p99(during), len(during)
	for _, secret := range secrets {
		_, err := v.Validate(ctx, secret, readDevices)
		assert.NoError(t, err, "Validate(live token) after the prune")
	}
	return f
}

// seedIdlePostgres bulk-loads n idle tokens (created two days before now,
// never used) into the tables of schema ns, in two INSERT … SELECT
// statements, and returns how long that took.
func seedIdlePostgres(t *testing.T, db *sql.DB, s *sqlstore.Store, ns string, n int, now time.Time) time.Duration {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	tokens, hashes := ns+"."+sqlstore.DefaultTablePrefix+"tokens", ns+"."+sqlstore.DefaultTablePrefix+"hashes"
	_, err := db.ExecContext(ctx, "INSERT INTO "+tokens+" (id, kind, owner_id, org_id, name, hash, created_at, updated_at, issued_at, version) "+
		"SELECT '00000000-0000-7000-8000-' || lpad(i::text, 12, '0'), $1, 'org_idle', 'org_idle', 'idle', sha256(('idle ' || i)::bytea), $2, $2, $2, 1 "+
		"FROM generate_series(1, $3) AS i", int64(apitoken.KindOrg), now.Add(-48*time.Hour), n)
	require.NoError(t, err, "bulk-load idle tokens")
	_, err = db.ExecContext(ctx, "INSERT INTO "+hashes+" (hash, token_id) SELECT hash, id FROM "+tokens+" WHERE name = 'idle'")
	require.NoError(t, err, "bulk-load idle tokens' hashes")
	_, err = db.ExecContext(ctx, "ANALYZE "+tokens+", "+hashes)
	require.NoError(t, err)
	// The rows read back through the store as tokens.
	page, err := s.List(ctx, apitoken.Filter{Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Tokens, 10)
	assert.Equal(t, "idle", page.Tokens[0].Name)
	return time.Since(start)
}

// testPrunersAtScale seeds n idle tokens on a fresh PostgreSQL store and
// checks four Pruners at once against them: exactly n deletions in all, no
// error, no token left, every batch under 1 s.
func testPrunersAtScale(t *testing.T, n int) pruneFigures {
	db, _ := openPostgres(t)
	ns := storetest.Namespace(t)
	s := newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(ns))
	seed := seedIdlePostgres(t, db, s, ns, n, time.Now())
	t.Logf("seeded %d idle tokens in %v", n, seed.Round(time.Millisecond))
	f := prunersAtScale(t, s, 4)
	t.Logf("4 pruners over %d idle tokens on PostgreSQL: %s", n, f)
	assert.Equal(t, n, f.deleted, "deletions the 4 pruners report in all")
	assert.Zero(t, f.errors, "pruner errors")
	assert.Less(t, f.longestBatch, time.Second, "longest Prune batch")
	var left int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+ns+"."+sqlstore.DefaultTablePrefix+"tokens WHERE name = 'idle'").Scan(&left))
	assert.Zero(t, left, "idle tokens left after the prune")
	return f
}

// TestPrunersAtScale runs four Pruners at once over 2,000 idle tokens on
// PostgreSQL; TestPrunersAtScaleLong (APITOKEN_LONG=1) over 100,000.
func TestPrunersAtScale(t *testing.T) { testPrunersAtScale(t, 2000) }

// TestPrunersAtScaleLong runs, three times, four Pruners at once over
// 100,000 idle tokens on PostgreSQL while validating live tokens, and
// checks, besides what TestPrunersAtScale checks, that the validation p99
// during the prune is within 2× of the p99 before it: the median of the
// three rounds' ratios, as the machine's other load moves single rounds.
func TestPrunersAtScaleLong(t *testing.T) {
	testservers.Long(t)
	var ratios []float64
	for round := range 3 {
		t.Run(fmt.Sprint("Round", round+1), func(t *testing.T) {
			f := testPrunersAtScale(t, 100_000)
			ratios = append(ratios, float64(f.during)/float64(f.before))
		})
	}
	slices.Sort(ratios)
	t.Logf("validation p99 during / before, by round: %.2f", ratios)
	assert.LessOrEqual(t, ratios[len(ratios)/2], 2.0, "median ratio of validation p99 during the prune to before")
}
