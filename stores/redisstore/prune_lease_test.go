package redisstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// TestPruneLease checks that one Prune at a time works on a namespace: a
// Prune that finds another's lease ({ns}:pl) deletes nothing and returns
// 0, and one that holds it releases it when done.
func TestPruneLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	f.token("user_1", nil)
	f.token("user_2", nil)
	r := apitoken.PruneRequest{IdleBefore: f.now.Add(time.Hour), Limit: 10}

	require.NoError(t, f.client.Set(ctx, f.ns+"pl", "another pruner", time.Minute).Err())
	n, err := f.store.Prune(ctx, r)
	assert.NoError(t, err, "Prune while another holds the lease")
	assert.Equal(t, 0, n, "Prune while another holds the lease")
	assert.Equal(t, "another pruner", f.client.Get(ctx, f.ns+"pl").Val(), "the other's lease after a Prune that found it")

	require.NoError(t, f.client.Del(ctx, f.ns+"pl").Err())
	n, err = f.store.Prune(ctx, r)
	assert.NoError(t, err, "Prune with no lease held")
	assert.Equal(t, 2, n, "Prune with no lease held")
	assert.Zero(t, f.client.Exists(ctx, f.ns+"pl").Val(), "lease left after a Prune returned")
}
