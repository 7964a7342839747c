package apitoken

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
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

// pendingUses collects the uses a Validator has not yet written and writes
// them, when the Validator flushes and from its flush loop. The loop holds
// this, never the Validator, so a Validator dropped without Close can still
// be collected; a cleanup then stops the loop, which writes what is left.
type pendingUses struct {
	store   Store
	logger  *slog.Logger
	seed    maphash.Seed
	shards  [pendingShards]pendingShard
	flushMu sync.Mutex    // one flush at a time
	stop    chan struct{} // closed to end the loop
	done    chan struct{} // closed when the loop has ended
	stopped sync.Once
	closed  atomic.Bool // set by stopLoop
}

func newPendingUses(store Store, logger *slog.Logger) *pendingUses {
	u := &pendingUses{store: store, logger: logger, seed: maphash.MakeSeed(),
		stop: make(chan struct{}), done: make(chan struct{})}
	for i := range u.shards {
		u.shards[i].m = make(map[string]int64)
	}
	return u
}

func (u *pendingUses) shard(id string) *pendingShard {
	return &u.shards[maphash.String(u.seed, id)%pendingShards]
}

// note remembers the use of token id at now, for the next flush.
func (u *pendingUses) note(id string, now time.Time) {
	t := now.UnixNano()
	sh := u.shard(id)
	sh.mu.Lock()
	if last, ok := sh.m[id]; !ok || t > last {
		sh.m[id] = t
	}
	sh.mu.Unlock()
}

// last returns the latest use of token id not yet written.
func (u *pendingUses) last(id string) (time.Time, bool) {
	sh := u.shard(id)
	sh.mu.Lock()
	t, ok := sh.m[id]
	sh.mu.Unlock()
	return time.Unix(0, t), ok
}

// flushBatch bounds the uses one Store.Touch call carries.
const flushBatch = 1000

// flush writes the collected uses in batches; see [Validator.Flush].
func (u *pendingUses) flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	var uses []Use
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		for id, at := range sh.m {
			uses = append(uses, Use{ID: id, At: time.Unix(0, at).UTC()})
		}
		clear(sh.m)
		sh.mu.Unlock()
	}
	for len(uses) > 0 {
		n := min(len(uses), flushBatch)
		if err := u.store.Touch(ctx, uses[:n]); err != nil {
			for _, use := range uses {
				u.note(use.ID, use.At)
			}
			return fmt.Errorf("apitoken: flush last-used times: %w", err)
		}
		uses = uses[n:]
	}
	return nil
}

// flushTimeout bounds one background flush.
const flushTimeout = 10 * time.Second

// loop writes the collected uses at every tick until stopped, then once
// more, so a host that remembers nothing but Close loses no use. A failed
// flush is logged (see [WithLogger]) and its uses are retried at the next
// tick. stopTick stops the ticker.
func (u *pendingUses) loop(tick <-chan time.Time, stopTick func()) {
	defer close(u.done)
	defer stopTick()
	for {
		select {
		case <-u.stop:
			u.backgroundFlush()
			return
		case <-tick:
			u.backgroundFlush()
		}
	}
}

// stopLoop ends the loop (idempotent). It is also the cleanup of a
// Validator collected without Close.
func (u *pendingUses) stopLoop() {
	u.closed.Store(true)
	u.stopped.Do(func() { close(u.stop) })
}

// dropped is the cleanup of a Validator collected without Close: it warns
// when uses are pending, naming Close, and stops the loop, which writes
// them.
func (u *pendingUses) dropped() {
	if u.closed.Load() {
		return // Close has written (or logged) what it held
	}
	if n := u.pending(); n > 0 && u.logger != nil {
		u.logger.LogAttrs(context.Background(), slog.LevelWarn,
			"apitoken: a Validator was dropped without Close while holding last-used times; "+
				"its cleanup writes them now, but call Validator.Close at shutdown so none is lost",
			slog.Int("pending", n))
	}
	u.stopLoop()
}

// pending returns how many uses are not yet written.
func (u *pendingUses) pending() int {
	n := 0
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// backgroundFlush flushes with the loop's own flushTimeout budget and logs
// a failure.
func (u *pendingUses) backgroundFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout) // no caller's context here
	defer cancel()
	u.logFlush(ctx, u.flush(ctx))
}

// finalFlush flushes with a fresh flushTimeout budget, even if ctx has
// ended, and logs a failure.
func (u *pendingUses) finalFlush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	u.logFlush(fctx, u.flush(fctx))
}

func (u *pendingUses) logFlush(ctx context.Context, err error) {
	if err != nil && u.logger != nil {
		u.logger.LogAttrs(ctx, slog.LevelWarn, "apitoken: last-used flush failed", slog.Any("error", err))
	}
}

// idle reports whether t has been unused longer than the idle timeout,
// counting uses this Validator has not yet written.
func (v *Validator) idle(t *Token, now time.Time) bool {
	if v.pol.idleTimeout == 0 || now.Sub(t.ActiveAt()) <= v.pol.idleTimeout {
		return false
	}
	last, ok := v.uses.last(t.ID)
	return !ok || now.Sub(last) > v.pol.idleTimeout
}

// recordUse records the use of t at now: in the store at once if it is a
// UseMarker, else in memory for the next flush.
func (v *Validator) recordUse(ctx context.Context, t *Token, now time.Time) {
	if v.marker != nil && v.marker.MarkUsed(ctx, t.Hash, now) == nil {
		return
	}
	v.uses.note(t.ID, now)
	if v.closed.Load() { // Close may have flushed before this note
		v.uses.finalFlush(ctx)
	}
}

// Flush writes the collected last-used times to the store now, in batches
// of at most 1,000 (the Validator also does so by itself every flush
// interval). Uses it could not write are kept for the next flush, and the
// store's error is returned.
func (v *Validator) Flush(ctx context.Context) error { return v.uses.flush(ctx) }
