package apitoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

// Validator checks presented tokens: the hot path. Use [NewValidator]; the
// zero value is not usable. A Validator is safe for concurrent use. It keeps
// last-used times in memory and writes them in batches by itself, every
// flush interval ([WithFlushInterval]), from the goroutine NewValidator
// starts; call [Validator.Close] at shutdown to stop it and write the rest
// ([Validator.Flush] writes them at once). A Validator dropped without
// Close stops its loop, writing what it held, once the garbage collector
// has collected it; until then its goroutine runs. A crash loses at most one flush
// interval of last-used times (never a revocation). A store that is a
// [UseMarker] (memstore) gets each use written at once instead.
type Validator struct {
	store  Store
	pol    *policy
	hash   *hasher
	cfg    validatorConfig
	closed atomic.Bool
	uses   *pendingUses // also held by the flush loop

	defaults LimitDefaults
	combined LookupLimiter // the store, when it is also the limiter
	reader   HashReader    // the store, when it can read into a scratch Token
	marker   UseMarker     // the store, when it records uses at once
}

// NewValidator returns a Validator reading tokens from store under policy.
// It takes [ValidatorOption]s: [WithHashKeys], [WithClock], [WithLogger],
// [WithLimiter], [WithUsers], [WithFlushInterval] and [WithSingleTenant];
// without WithSingleTenant it is multi-tenant. It starts the goroutine that writes
// last-used times every flush interval; [Validator.Close] stops it. Given a store
// that implements [LookupLimiter] as its own limiter (WithLimiter(store)),
// it looks up and rate-limits in one store round trip; a request that is
// then denied (idle, IP, role, access, resource, user directory) gets its
// request back with [LookupLimiter.Refund], a second round trip on that
// path only, so on every store a denied request costs no budget. Given a [HashReader] store it
// reads tokens into reused Tokens, and given a [UseMarker] store it writes
// uses at once. An invalid policy is a [*PolicyError], as is an idle
// timeout shorter than the flush interval; a bad option is an error naming
// it; a store that says it cannot serve (see Readiness in [Store], such as
// a database never migrated) is an error wrapping the store's.
func NewValidator(store Store, policy Policy, opts ...ValidatorOption) (*Validator, error) {
	if store == nil {
		return nil, errors.New("apitoken: NewValidator: nil Store")
	}
	cfg := validatorConfig{base: newBase(), flushInterval: DefaultFlushInterval}
	err := configure("NewValidator", &cfg, opts, ValidatorOption.applyValidator)
	defer wipe(cfg.hashKeys) // the hasher holds its own copies
	if err != nil {
		return nil, err
	}
	if err := checkReady("NewValidator", store); err != nil {
		return nil, err
	}
	pol, err := policy.compile()
	if err != nil {
		return nil, err
	}
	if pol.idleTimeout > 0 && pol.idleTimeout < cfg.flushInterval {
		return nil, policyErr("IdleTimeout", fmt.Sprintf("%s is shorter than the flush interval (%s): a token in use "+
			"would look idle before its use is written; raise IdleTimeout or lower WithFlushInterval", pol.idleTimeout, cfg.flushInterval))
	}
	v := &Validator{store: store, pol: pol, hash: newHasher(cfg.hashKeys), cfg: cfg, uses: newPendingUses(store, cfg.logger),
		defaults: pol.limitDefaults()}
	// The store is its own limiter only if it is the very same value (and
	// == would not panic on an incomparable type).
	if ll, ok := store.(LookupLimiter); ok && cfg.limiter != nil &&
		reflect.TypeOf(ll).Comparable() && Limiter(ll) == cfg.limiter {
		v.combined = ll
	}
	if r, ok := store.(HashReader); ok && v.combined == nil {
		v.reader = r
	}
	v.marker, _ = store.(UseMarker)
	v.cfg.hashKeys = nil
	tick, stopTick := cfg.ticker(cfg.flushInterval)
	go v.uses.loop(tick, stopTick)
	// A Validator dropped without Close warns and stops its loop (which
	// writes the pending uses) when collected.
	runtime.AddCleanup(v, (*pendingUses).dropped, v.uses)
	return v, nil
}

// Validate checks the presented token for req and returns the principal it
// acts for. It fails, in this order, with [ErrMalformed] (no store call),
// [ErrUnknown], [ErrRevoked], [ErrExpired], [ErrIdle], [ErrIPNotAllowed],
// [ErrForbidden] or a [*RateLimitError] (matching [ErrRateLimited]); with an
// error wrapping [ErrStoreUnavailable] if the store, directory or limiter
// cannot answer (never success); and with [ErrClosed] after Close. Once a
// stored token was found, the error is a [*TokenError] naming it. The
// current policy applies to every token, whenever it was issued: a shorter
// MaxLifetime, RequireExpiry, RequireIPFilter, a changed named IP filter,
// inline IP filters no longer allowed or a removed role take effect on the
// next validation. The returned Principal is the caller's; see its doc
// about shared slices.
func (v *Validator) Validate(ctx context.Context, presented string, req Request) (*Principal, error) {
	return v.validate(ctx, presented, req, nil)
}

// ValidateInto is Validate writing the principal into p instead of
// allocating one, for callers that allocate it together with other
// per-request state (as package httpauth does with its request context).
// On error p is unspecified.
func (v *Validator) ValidateInto(ctx context.Context, presented string, req Request, p *Principal) error {
	if p == nil {
		return errors.New("apitoken: ValidateInto: nil Principal")
	}
	_, err := v.validate(ctx, presented, req, p)
	return err
}

// SingleTenant reports the org of a single-tenant Validator (see
// [WithSingleTenant]); ok is false for a multi-tenant one.
func (v *Validator) SingleTenant() (org string, ok bool) { return v.cfg.tenant, v.cfg.tenant != "" }

// validate is Validate, writing the principal into p, or into a new one
// (the one allocation) when p is nil. It reads as the hot path goes: find
// the token, check its state, work out its privileges, authorize the
// request, note the use, charge the budget.
func (v *Validator) validate(ctx context.Context, presented string, req Request, p *Principal) (*Principal, error) {
	if v.closed.Load() {
		return nil, ErrClosed
	}
	pl := len(v.pol.prefix)
	if len(presented) != pl+1+BodyLen+ChecksumLen || presented[:pl] != v.pol.prefix || !wellFormed(presented) {
		return nil, ErrMalformed
	}
	now := v.cfg.clock()
	var dst *Token
	if v.reader != nil {
		dst = scratch.Get().(*Token)
		defer scratch.Put(dst)
	}
	f, err := v.find(ctx, dst, presented, now)
	if err != nil {
		return nil, err
	}
	t, org := f.token, req.Org
	if org == "" {
		org = v.cfg.tenant
	}
	expiresAt := v.pol.expiry(t)
	if reason := v.checkState(f, org, expiresAt, req.IP, now); reason != nil {
		return nil, v.reject(ctx, f, now, reason)
	}

	if p == nil {
		p = new(Principal)
	}
	*p = Principal{
		TokenID: t.ID, Hint: t.Hint, Name: t.Name, Kind: t.Kind, OwnerID: t.OwnerID,
		OrgID: t.OrgID, Roles: t.Roles, Grants: t.Grants, Resources: t.Resources,
		Metadata: t.Metadata, ExpiresAt: expiresAt, KeyOutdated: f.olderKey, pol: v.pol,
	}
	if t.Kind == KindUser {
		if err := v.member(ctx, p, t, org); err != nil {
			if errors.Is(err, ErrStoreUnavailable) {
				v.refund(ctx, f, now)
				return nil, err
			}
			return nil, v.reject(ctx, f, now, err)
		}
	}

	if req.Access > AccessNone && p.Access(req.API) < req.Access {
		err := v.reject(ctx, f, now, ErrForbidden)
		err.API, err.Access = req.API, req.Access
		return nil, err
	}
	if req.Resource != "" && !p.AllowsResource(req.Resource) {
		return nil, v.reject(ctx, f, now, ErrForbidden)
	}

	if now.Sub(t.LastUsedAt) >= v.cfg.flushInterval { // else the store has a use recent enough
		v.recordUse(ctx, t, now)
	}
	if err := v.charge(ctx, p, f, now); err != nil {
		return nil, err
	}
	return p, nil
}

// found is what [Validator.find] found.
type found struct {
	token    *Token
	prev     bool      // matched the previous secret, in its grace period
	olderKey bool      // matched under an older hash key
	charged  *Decision // taken by a combined lookup (GetByHashAllow), or nil
}

// The reasons an org token is unknown where it is presented: they match
// [ErrUnknown], and a [TokenError]'s text (for logs only) says why.
var (
	errOtherOrg = fmt.Errorf("%w: not valid in this org (an org token works only in its own org)", ErrUnknown)
	errNoOrg    = fmt.Errorf("%w: not valid without an org (the request named none, on a multi-tenant Validator)", ErrUnknown)
)

// checkState returns why the found token cannot act in org from addr at
// now, or nil: foreign, revoked, expired (at expiresAt, or its previous
// secret's grace is over), idle or outside its IP filter.
func (v *Validator) checkState(f found, org string, expiresAt time.Time, addr netip.Addr, now time.Time) error {
	t := f.token
	switch {
	case t.Kind == KindOrg && t.OrgID != org:
		// From another org (or from none), a foreign token does not exist;
		// only the log learns why.
		if org == "" {
			return errNoOrg
		}
		return errOtherOrg
	case t.Revoked():
		return ErrRevoked
	case !expiresAt.IsZero() && !now.Before(expiresAt), f.prev && !now.Before(t.PrevExpiresAt):
		return ErrExpired
	case v.idle(t, now):
		return ErrIdle
	case !v.pol.allowsIP(t.IPFilter, addr):
		return ErrIPNotAllowed
	}
	return nil
}

// charge takes the request from the token's budget (or uses the decision a
// combined lookup took) and puts the decision in p.
func (v *Validator) charge(ctx context.Context, p *Principal, f found, now time.Time) error {
	var dec Decision
	limited := f.charged != nil
	if limited {
		dec = *f.charged
	} else if v.combined == nil {
		var err error
		if dec, limited, err = v.rateLimit(ctx, f.token, now); err != nil {
			return err
		}
	}
	if !limited {
		return nil
	}
	if dec.ResetAfter == 0 && dec.ResetAt.After(now) {
		dec.ResetAfter = dec.ResetAt.Sub(now)
	}
	if !dec.Allowed {
		return &TokenError{TokenID: f.token.ID, Hint: f.token.Hint, Err: &RateLimitError{Decision: dec}}
	}
	p.Decision = dec
	return nil
}

// reject returns the rejection of the found token for reason, after giving
// back the request a combined lookup charged, so a denied request costs no
// budget.
func (v *Validator) reject(ctx context.Context, f found, now time.Time, reason error) *TokenError {
	v.refund(ctx, f, now)
	return &TokenError{TokenID: f.token.ID, Hint: f.token.Hint, Err: reason}
}

// refund gives back the request GetByHashAllow took, if it took one. A
// failed refund costs the client one request of budget; it is logged.
func (v *Validator) refund(ctx context.Context, f found, now time.Time) {
	if f.charged == nil || !f.charged.Allowed || v.combined == nil {
		return
	}
	key, limit := v.defaults.LimitFor(f.token)
	if err := v.combined.Refund(ctx, key, limit, now); err != nil && v.cfg.logger != nil {
		v.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "apitoken: rate-limit refund failed",
			slog.String("token_id", f.token.ID), slog.Any("error", err))
	}
}

// find looks up the token whose hash (under any key of the ring) matches s.
// With a LookupLimiter store as limiter the same round trip takes the
// rate-limit decision; with a HashReader store the token is read into dst.
func (v *Validator) find(ctx context.Context, dst *Token, s string, now time.Time) (found, error) {
	for i := range v.hash.keys() {
		h := v.hash.sum(i, s)
		var (
			t   *Token
			d   *Decision
			err error
		)
		switch {
		case v.reader != nil:
			t = dst
			err = v.reader.ReadByHash(ctx, h, t)
		case v.combined != nil:
			t, d, err = v.combined.GetByHashAllow(ctx, h, v.defaults, now)
		default:
			t, err = v.store.GetByHash(ctx, h)
		}
		switch {
		case err == nil:
			f := found{token: t, olderKey: i > 0, charged: d}
			if equal(t.Hash, h) {
				return f, nil
			}
			if !t.PrevHash.IsZero() && equal(t.PrevHash, h) {
				f.prev = true
				return f, nil
			}
			return found{}, ErrUnknown // a store that matched loosely
		case !errors.Is(err, ErrNotFound):
			return found{}, fmt.Errorf("apitoken: validate: %w: %w", ErrStoreUnavailable, err)
		}
	}
	return found{}, ErrUnknown
}

// member replaces p's privileges with the user's current ones in org,
// narrowed by the token's own.
func (v *Validator) member(ctx context.Context, p *Principal, t *Token, org string) error {
	if v.cfg.users == nil {
		return fmt.Errorf("%w: no user directory configured", ErrForbidden)
	}
	m, err := v.cfg.users.Member(ctx, t.OwnerID, org)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: user has no access to the org", ErrForbidden)
	}
	if err != nil {
		return fmt.Errorf("apitoken: validate: directory: %w: %w", ErrStoreUnavailable, err)
	}
	p.UserID, p.OrgID = t.OwnerID, org
	p.Roles, p.Grants, p.Resources = m.Roles, m.Grants, m.Resources
	if len(t.Roles) > 0 || len(t.Grants) > 0 {
		p.Roles, p.Grants = v.pol.narrow(m.Roles, m.Grants, t.Roles, t.Grants)
	}
	if len(t.Resources) > 0 {
		if len(m.Resources) > 0 {
			p.Resources = intersect(m.Resources, t.Resources)
			if len(p.Resources) == 0 {
				return fmt.Errorf("%w: the user has none of the token's resources", ErrForbidden)
			}
		} else {
			p.Resources = slices.Clone(t.Resources)
		}
	}
	return nil
}

// rateLimit takes the request from t's budget and reports whether a limit
// applied.
func (v *Validator) rateLimit(ctx context.Context, t *Token, now time.Time) (Decision, bool, error) {
	if v.cfg.limiter == nil {
		return Decision{}, false, nil
	}
	key, limit := v.defaults.LimitFor(t)
	if limit.IsZero() {
		return Decision{}, false, nil
	}
	d, err := v.cfg.limiter.Allow(ctx, key, limit, now)
	if err != nil {
		return Decision{}, false, fmt.Errorf("apitoken: validate: limiter: %w: %w", ErrStoreUnavailable, err)
	}
	return d, true, nil
}

// Close stops validation (later calls return [ErrClosed]), stops the
// background flush and writes the pending last-used times, returning the
// store's error if that write fails (or ctx's, if ctx ends while a
// background flush is finishing). A validation already under way when
// Close is called may still succeed; it then writes its use itself, so no
// use is lost. Close is idempotent: a second call only flushes what is
// left (nothing) and returns nil.
func (v *Validator) Close(ctx context.Context) error {
	v.closed.Store(true)
	v.uses.stopLoop()
	select {
	case <-v.uses.done:
	case <-ctx.Done():
		return fmt.Errorf("apitoken: close: %w", ctx.Err())
	}
	return v.uses.flush(ctx)
}

// Format prints only the type: a Validator holds keys.
func (v *Validator) Format(f fmt.State, _ rune) { io.WriteString(f, "apitoken.Validator{…}") }
