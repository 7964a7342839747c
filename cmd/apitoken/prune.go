package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/spf13/cobra"
)

func (a *app) pruneCmd() *cobra.Command {
	var (
		dryRun bool
		batch  int
	)
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete idle tokens and tokens ended longer ago than the retention",
		Long: `prune runs one pass of apitoken's Pruner under the policy: it deletes tokens
unused for longer than the idle timeout plus a margin of one hour (counting
from creation if never used), then tokens expired or revoked longer ago than
the expired retention, in batches, and prints "pruned N idle, M expired".
On a terminal, stderr shows a running count.

Last-used times that servers have not written yet (they write them every
flush interval, one minute by default) are not seen; the margin covers them.

--dry-run deletes nothing: it reads every token and counts, with the same
criteria and instants, what a pass would delete: "would prune N idle, M expired".`,
		Args: cobra.NoArgs,
		RunE: a.do(writes, func(ctx context.Context, s *openedStore, _ []string) error {
			if batch <= 0 {
				return usagef("--batch-size must be positive")
			}
			var done atomic.Int64
			stop := a.progress(&done, map[bool]string{false: "pruned", true: "scanned"}[dryRun])
			var st apitoken.PruneStats
			var err error
			var pr *apitoken.Pruner
			pr, err = apitoken.NewPruner(countingStore{s, &done}, a.policy, apitoken.WithBatchSize(batch))
			switch {
			case err != nil:
			case dryRun:
				st, err = pr.Pending(ctx)
			default:
				st, err = pr.Prune(ctx)
			}
			stop()
			if err != nil {
				if n := st.Idle + st.Expired; n > 0 && !dryRun {
					fmt.Fprintf(a.stdout, "pruned %d idle, %d expired before the error\n", st.Idle, st.Expired)
				}
				return err
			}
			verb := "pruned"
			if dryRun {
				verb = "would prune"
			}
			fmt.Fprintf(a.stdout, "%s %d idle, %d expired\n", verb, st.Idle, st.Expired)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be pruned, delete nothing")
	cmd.Flags().IntVar(&batch, "batch-size", apitoken.DefaultPruneBatch, "tokens deleted per store call")
	return cmd
}

// countingStore counts the tokens its Prune deletes (or, for a dry run,
// its List reads), for the progress line.
type countingStore struct {
	apitoken.Store
	n *atomic.Int64
}

func (c countingStore) Prune(ctx context.Context, r apitoken.PruneRequest) (int, error) {
	n, err := c.Store.Prune(ctx, r)
	c.n.Add(int64(n))
	return n, err
}

func (c countingStore) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	p, err := c.Store.List(ctx, f)
	c.n.Add(int64(len(p.Tokens)))
	return p, err
}

// progress shows "\r<verb> N tokens" on stderr, if it is a terminal, five
// times a second until the returned function is called, which prints the
// last count and ends the line.
func (a *app) progress(n *atomic.Int64, verb string) (stop func()) {
	if !a.stderrTTY {
		return func() {}
	}
	show := func(w io.Writer) { fmt.Fprintf(w, "\r%s %d tokens…", verb, n.Load()) }
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			show(a.stderr)
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
		show(a.stderr)
		fmt.Fprintln(a.stderr)
	}
}
