package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

// TestNoBusyErrorsUnderContention: 8 goroutines × 1,000 mixed writes
// (issue, update, revoke, touch) on one SQLite file: no SQLITE_BUSY, or any
// other error, reaches a caller.
func TestNoBusyErrorsUnderContention(t *testing.T) {
	const workers, writes = 8, 1000
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tokens.db"), sqlite.WithMigrate())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close(context.Background()) })
	iss, err := apitoken.NewIssuer(store, apitoken.Policy{Prefix: "busy"})
	require.NoError(t, err)

	var failures atomic.Int64
	var first atomic.Pointer[error]
	fail := func(err error) {
		failures.Add(1)
		first.CompareAndSwap(nil, &err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var mine []string
			for i := range writes {
				switch {
				case len(mine) < 5 || i%4 == 0:
					_, tok, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: fmt.Sprint("u", w), Name: "t"})
					if err != nil {
						fail(err)
						continue
					}
					mine = append(mine, tok.ID)
				case i%4 == 1:
					name := fmt.Sprint("n", i)
					if _, err := iss.Update(ctx, mine[i%len(mine)], apitoken.Patch{Name: &name}); err != nil &&
						!errors.Is(err, apitoken.ErrRevoked) {
						fail(err)
					}
				case i%4 == 2:
					if err := iss.Revoke(ctx, mine[i%len(mine)]); err != nil {
						fail(err)
					}
				default:
					if err := store.Touch(ctx, []apitoken.Use{{ID: mine[i%len(mine)], At: time.Now()}}); err != nil {
						fail(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		t.Errorf("first error: %v", *p)
	}
	assert.Zero(t, failures.Load(), "errors that reached callers in %d writes", workers*writes)
}
