package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

// TestValidatorWritesUsesByItself: a Validator nobody runs or flushes
// writes a use to a real SQLite store within two flush intervals, from the
// goroutine NewValidator starts (fake time in a synctest bubble: the sleep
// waits for nothing real).
func TestValidatorWritesUsesByItself(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tokens.db"), sqlite.WithMigrate())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close(context.Background()) })

	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		pol := apitoken.Policy{Prefix: "acme"}
		iss, err := apitoken.NewIssuer(store, pol)
		require.NoError(t, err)
		v, err := apitoken.NewValidator(store, pol, apitoken.WithSingleTenant("org_1"),
			apitoken.WithFlushInterval(time.Minute))
		require.NoError(t, err)
		secret, tok, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci",
			Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}})
		require.NoError(t, err)

		used := time.Now()
		_, err = v.Validate(ctx, secret.Reveal(), apitoken.Request{API: "devices", Access: apitoken.AccessRead})
		require.NoError(t, err)
		got, err := store.Get(ctx, tok.ID)
		require.NoError(t, err)
		assert.True(t, got.LastUsedAt.IsZero(), "the use waits in memory for the next flush")

		// Two flush intervals of the bubble's fake clock, which jumps there
		// as soon as every goroutine in the bubble is blocked: no real wait.
		<-time.After(2 * time.Minute)
		synctest.Wait()
		got, err = store.Get(ctx, tok.ID)
		require.NoError(t, err)
		assert.True(t, got.LastUsedAt.Equal(used.UTC().Truncate(time.Microsecond)),
			"LastUsedAt = %v, want %v, written without Run, Flush or Close", got.LastUsedAt, used)
		require.NoError(t, v.Close(ctx))
	})
}
