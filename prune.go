package apitoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Pruner removes tokens unused for longer than the policy's IdleTimeout (plus
// a margin) and tokens expired or revoked longer ago than the policy's
// ExpiredRetention, in bounded batches, with deletions the store re-checks so
// a token used meanwhile survives. Use [NewPruner]; the zero value is not
// usable. A Pruner is safe for concurrent use, and several replicas may prune
// one store at once.
type Pruner struct {
	store Store
	pol   *policy
	cfg   prunerConfig
}

// NewPruner returns a Pruner for store under policy. It takes
// [PrunerOption]s: [WithClock], [WithLogger], [WithAudit], [WithBatchSize],
// [WithPruneMargin] and [WithFlushFirst]. An invalid policy is a
// [*PolicyError]; a bad option is an error naming it; a store that says it
// cannot serve (see Readiness in [Store]) is an error wrapping the store's.
func NewPruner(store Store, policy Policy, opts ...PrunerOption) (*Pruner, error) {
	if store == nil {
		return nil, errors.New("apitoken: NewPruner: nil Store")
	}
	cfg := prunerConfig{base: newBase(), batchSize: DefaultPruneBatch, pruneMargin: DefaultPruneMargin}
	if err := configure("NewPruner", &cfg, opts, PrunerOption.applyPruner); err != nil {
		return nil, err
	}
	if err := checkReady("NewPruner", store); err != nil {
		return nil, err
	}
	pol, err := policy.compile()
	if err != nil {
		return nil, err
	}
	return &Pruner{store: store, pol: pol, cfg: cfg}, nil
}

// PruneStats counts what one pass removed.
type PruneStats struct {
	Idle    int // tokens unused past the idle timeout
	Expired int // tokens expired or revoked past the retention
}

// Prune runs one pass: it deletes batch after batch until a batch comes back
// short or ctx ends, and returns the counts so far with the first error.
func (pr *Pruner) Prune(ctx context.Context) (st PruneStats, err error) {
	defer func() {
		if n := st.Idle + st.Expired; n > 0 && pr.cfg.audit != nil {
			pr.cfg.audit(ctx, Event{Type: EventPruned, Actor: ActorFrom(ctx), Count: n, At: pr.cfg.clock().UTC()})
		}
	}()
	if v := pr.cfg.flushFirst; v != nil {
		if err := v.Flush(ctx); err != nil {
			return st, storeErr("prune", err)
		}
	}
	idle, ended := pr.requests(pr.cfg.clock().UTC())
	if !idle.IdleBefore.IsZero() {
		if st.Idle, err = pr.drain(ctx, idle); err != nil {
			return st, err
		}
	}
	st.Expired, err = pr.drain(ctx, ended)
	return st, err
}

// requests returns the two passes of a prune at now: idle tokens (a zero
// request without an idle timeout) and long-ended ones.
func (pr *Pruner) requests(now time.Time) (idle, ended PruneRequest) {
	if pr.pol.idleTimeout > 0 {
		idle.IdleBefore = now.Add(-pr.pol.idleTimeout - pr.cfg.pruneMargin)
	}
	ended.EndedBefore = now.Add(-pr.pol.retention)
	return idle, ended
}

// Pending counts what [Pruner.Prune] would delete now, deleting nothing:
// a dry run. It reads every token of the store, page by page, and counts a
// token both idle and long ended as idle (the idle pass runs first). It
// does not flush first (see [WithFlushFirst]). Errors are the store's.
func (pr *Pruner) Pending(ctx context.Context) (PruneStats, error) {
	var st PruneStats
	idle, ended := pr.requests(pr.cfg.clock().UTC())
	f := Filter{Limit: MaxPageSize}
	for {
		page, err := pr.store.List(ctx, f)
		if err != nil {
			return st, storeErr("prune", err)
		}
		for _, t := range page.Tokens {
			switch {
			case !idle.IdleBefore.IsZero() && idle.Matches(t):
				st.Idle++
			case ended.Matches(t):
				st.Expired++
			}
		}
		if page.Next == "" {
			return st, nil
		}
		f.Cursor = page.Next
	}
}

func (pr *Pruner) drain(ctx context.Context, r PruneRequest) (int, error) {
	r.Limit = pr.cfg.batchSize
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := pr.store.Prune(ctx, r)
		total += n
		if err != nil {
			return total, storeErr("prune", err)
		}
		if n < r.Limit {
			return total, nil
		}
	}
}

// Run prunes every interval until ctx ends, then returns nil. Failures are
// logged (see [WithLogger]) and retried at the next tick. It prunes once at
// start.
func (pr *Pruner) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return errors.New("apitoken: Pruner.Run: interval must be positive")
	}
	tick, stop := pr.cfg.ticker(interval)
	defer stop()
	for {
		st, err := pr.Prune(ctx)
		if l := pr.cfg.logger; l != nil {
			if err != nil && ctx.Err() == nil {
				l.LogAttrs(ctx, slog.LevelWarn, "apitoken: prune failed", slog.Any("error", err))
			} else if st.Idle+st.Expired > 0 {
				l.LogAttrs(ctx, slog.LevelInfo, "apitoken: pruned tokens", slog.Int("idle", st.Idle), slog.Int("expired", st.Expired))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// Format prints only the type.
func (pr *Pruner) Format(f fmt.State, _ rune) { io.WriteString(f, "apitoken.Pruner{…}") }

// prunerConfig is what NewPruner's options set.
type prunerConfig struct {
	base
	batchSize   int
	pruneMargin time.Duration
	flushFirst  *Validator
	audit       func(context.Context, Event)
}

// prunerOption is a [PrunerOption] of the Pruner's own.
type prunerOption struct {
	name  string
	apply func(*prunerConfig) error
}

func (o prunerOption) applyPruner(c *prunerConfig) error {
	if err := o.apply(c); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

// DefaultPruneBatch is how many tokens one prune step deletes at most.
const DefaultPruneBatch = 500

// WithBatchSize sets how many tokens one prune step deletes at most.
func WithBatchSize(n int) PrunerOption {
	return prunerOption{"WithBatchSize", func(c *prunerConfig) error {
		if n <= 0 {
			return fmt.Errorf("batch size must be positive")
		}
		c.batchSize = n
		return nil
	}}
}

// DefaultPruneMargin is added to the idle timeout when pruning, so tokens
// used on a replica whose last-used times are not yet flushed survive.
const DefaultPruneMargin = time.Hour

// WithPruneMargin sets how much longer than the idle timeout a token must be
// unused before the pruner removes it (default one hour). Keep it above every
// replica's flush interval.
func WithPruneMargin(d time.Duration) PrunerOption {
	return prunerOption{"WithPruneMargin", func(c *prunerConfig) error {
		if d < 0 {
			return fmt.Errorf("negative margin")
		}
		c.pruneMargin = d
		return nil
	}}
}

// WithFlushFirst makes the pruner flush v's pending last-used times before
// each pass.
func WithFlushFirst(v *Validator) PrunerOption {
	return prunerOption{"WithFlushFirst", func(c *prunerConfig) error {
		if v == nil {
			return fmt.Errorf("nil Validator")
		}
		c.flushFirst = v
		return nil
	}}
}
