package sqlstore_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/storefaults"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// pruneScalePolicy is the policy of the prune-at-scale tests: tokens
// unused for a day are idle.
var pruneScalePolicy = func() apitoken.Policy {
	p := policy
	p.IdleTimeout = 24 * time.Hour
	return p
}()

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
func testPrunersAtScale(t *testing.T, n int) storefaults.PruneFigures {
	db, _ := openPostgres(t)
	ns := storetest.Namespace(t)
	s := newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(ns))
	seed := seedIdlePostgres(t, db, s, ns, n, time.Now())
	f := storefaults.PrunersAtScale(t, faultFixture(t, s, pruneScalePolicy), "PostgreSQL", n, seed)
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
	ratios := storefaults.P99Ratios(t, 3, 100_000, testPrunersAtScale)
	t.Logf("validation p99 during / before, by round: %.2f", ratios)
	assert.LessOrEqual(t, ratios[len(ratios)/2], 2.0, "median ratio of validation p99 during the prune to before")
}
