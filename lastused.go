package apitoken

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"
)

const pendingShards = 32

// pendingShard maps token IDs to the Unix ns of their latest use not yet
// written: plain int64 values, so the collector has nothing to chase.
type pendingShard struct {
	mu sync.Mutex
	m  map[string]int64
	_  [48]byte // keep shards on separate cache lines
}

// idle reports whether t has been unused longer than the idle timeout,
// counting uses this Validator has not yet written.
func (v *Validator) idle(t *Token, now time.Time) bool {
	if v.pol.idleTimeout == 0 || now.Sub(t.ActiveAt()) <= v.pol.idleTimeout {
		return false
	}
	sh := v.shard(t.ID)
	sh.mu.Lock()
	last, ok := sh.m[t.ID]
	sh.mu.Unlock()
	return !ok || now.Sub(time.Unix(0, last)) > v.pol.idleTimeout
}

func (v *Validator) shard(id string) *pendingShard {
	return &v.pending[maphash.String(v.seed, id)%pendingShards]
}

// recordUse records the use of t at now: in the store at once if it is a
// UseMarker, else in memory for the next flush.
func (v *Validator) recordUse(ctx context.Context, t *Token, now time.Time) {
	if v.marker != nil && v.marker.MarkUsed(ctx, t.Hash, now) == nil {
		return
	}
	v.noteUse(t.ID, now)
	if v.closed.Load() { // Close may have flushed before this note
		v.finalFlush(ctx)
	}
}

// noteUse remembers the use of token id at now, for the next flush.
func (v *Validator) noteUse(id string, now time.Time) {
	t := now.UnixNano()
	sh := v.shard(id)
	sh.mu.Lock()
	if last, ok := sh.m[id]; !ok || t > last {
		sh.m[id] = t
	}
	sh.mu.Unlock()
}

// flushBatch bounds the uses one Store.Touch call carries.
const flushBatch = 1000

// Flush writes the collected last-used times to the store in batches of at
// most 1,000. Uses it could not write are kept for the next flush, and the
// store's error is returned.
func (v *Validator) Flush(ctx context.Context) error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	var uses []Use
	for i := range v.pending {
		sh := &v.pending[i]
		sh.mu.Lock()
		for id, at := range sh.m {
			uses = append(uses, Use{ID: id, At: time.Unix(0, at).UTC()})
		}
		clear(sh.m)
		sh.mu.Unlock()
	}
	for len(uses) > 0 {
		n := min(len(uses), flushBatch)
		if err := v.store.Touch(ctx, uses[:n]); err != nil {
			for _, u := range uses {
				v.noteUse(u.ID, u.At)
			}
			return fmt.Errorf("apitoken: flush last-used times: %w", err)
		}
		uses = uses[n:]
	}
	return nil
}

// flushTimeout bounds one background flush.
const flushTimeout = 10 * time.Second

// flushLoop writes the collected last-used times every flush interval
// until Close, so a host that forgets nothing but Close loses no use. A
// failed flush is logged (see [WithLogger]) and its uses are retried at the
// next tick.
func (v *Validator) flushLoop() {
	defer close(v.done)
	tick, stop := v.cfg.ticker(v.cfg.flushInterval)
	defer stop()
	for {
		select {
		case <-v.stop:
			return
		case <-tick:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout) // the loop's own, no caller's
			v.logFlush(ctx, v.Flush(ctx))
			cancel()
		}
	}
}

// finalFlush flushes with a fresh flushTimeout budget, even if ctx has
// ended, and logs a failure.
func (v *Validator) finalFlush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	v.logFlush(fctx, v.Flush(fctx))
}

func (v *Validator) logFlush(ctx context.Context, err error) {
	if err != nil && v.cfg.logger != nil {
		v.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "apitoken: last-used flush failed", slog.Any("error", err))
	}
}
