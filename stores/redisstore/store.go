package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
)

// Store is an [apitoken.Store] on Redis, and an [apitoken.LookupLimiter]:
// given to a Validator as its own limiter, it looks a token up and takes
// its rate-limit decision in one script, one round trip. Use [New]; the
// zero value is not usable. A Store is safe for concurrent use.
type Store struct {
	client    redis.UniversalClient
	k         keys
	retention string // milliseconds, "0" for none
	durable   *durability
	offset    offset
	closed    atomic.Bool
	limits    atomic.Pointer[limitArgs] // the arguments of the last GetByHashAllow
}

type durability struct {
	replicas int
	timeout  time.Duration
}

var (
	_ apitoken.Store         = (*Store)(nil)
	_ apitoken.LookupLimiter = (*Store)(nil)
)

// New returns a Store keeping tokens in the namespace of [WithKeyPrefix]
// (default [DefaultKeyPrefix]) on client: a *redis.Client (single server or
// Sentinel), a *redis.ClusterClient or any other redis.UniversalClient.
// The caller keeps ownership of client and closes it after the Store.
//
// New talks to every server of client: it returns [ErrEvictionPolicy] if
// one has a maxmemory-policy other than noeviction (unless
// [WithEvictionAllowed]), loads the scripts, and checks what
// [WithDurableRevoke] needs. It fails if a server cannot be reached.
func New(ctx context.Context, client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: New: nil client")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("redisstore: New: %w", err)
	}
	s := &Store{
		client:    client,
		k:         keys{prefix: "{" + o.prefix + "}:"},
		retention: strconv.FormatInt(o.retention.Milliseconds(), 10),
		offset:    o.offset,
	}
	if err := checkServers(ctx, client, o); err != nil {
		return nil, err
	}
	if o.durable {
		if err := checkDurable(ctx, client); err != nil {
			return nil, err
		}
		s.durable = &durability{replicas: o.durReplicas, timeout: o.durTimeout}
	}
	return s, nil
}

// server is what New needs of one server's client.
type server interface {
	redis.Cmdable
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// eachServer runs f on every server of client (primaries and replicas for
// a Cluster or Ring, the client itself otherwise).
func eachServer(ctx context.Context, client redis.UniversalClient, f func(context.Context, server) error) error {
	type sharded interface {
		ForEachShard(context.Context, func(context.Context, *redis.Client) error) error
	}
	if c, ok := client.(sharded); ok {
		return c.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return f(ctx, c) })
	}
	return f(ctx, client)
}

// checkServers checks the eviction policy of every server and loads the
// scripts into each.
func checkServers(ctx context.Context, client redis.UniversalClient, o *options) error {
	return eachServer(ctx, client, func(ctx context.Context, c server) error {
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return fmt.Errorf("redisstore: New: checking the server version: %w", err)
		}
		if v := infoField(info, "redis_version"); !atLeast7(v) {
			return fmt.Errorf("%w: %s runs %q", ErrServerTooOld, serverName(c), v)
		}
		if !o.allowEviction {
			info, err := c.Info(ctx, "memory").Result()
			if err != nil {
				return fmt.Errorf("redisstore: New: checking maxmemory-policy: %w", err)
			}
			if p := infoField(info, "maxmemory_policy"); p != "noeviction" {
				if p == "" {
					p = "unknown"
				}
				return fmt.Errorf("%w: %s is %q (see WithEvictionAllowed)", ErrEvictionPolicy, serverName(c), p)
			}
		}
		// Replicas refuse SCRIPT LOAD only when read-only scripts are
		// disabled; a failure there is not fatal: EVALSHA falls back.
		for _, sc := range allScripts {
			if err := sc.Load(ctx, c).Err(); err != nil && !isReplica(ctx, c) {
				return fmt.Errorf("redisstore: New: loading scripts: %w", err)
			}
		}
		return nil
	})
}

// atLeast7 reports whether the INFO redis_version v is 7.0 or later.
func atLeast7(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 7
}

func isReplica(ctx context.Context, c server) bool {
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && infoField(info, "role") == "slave"
}

func serverName(c server) string {
	if cl, ok := c.(*redis.Client); ok {
		return "server " + cl.Options().Addr
	}
	return "the server"
}

// infoField returns the value of field in an INFO reply, or "".
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), field+":"); ok {
			return v
		}
	}
	return ""
}

// checkDurable checks what WithDurableRevoke needs on every primary.
func checkDurable(ctx context.Context, client redis.UniversalClient) error {
	switch client.(type) {
	case *redis.Client, *redis.ClusterClient:
	default:
		return fmt.Errorf("redisstore: New: WithDurableRevoke needs a *redis.Client or *redis.ClusterClient, not %T", client)
	}
	return eachServer(ctx, client, func(ctx context.Context, c server) error {
		if isReplica(ctx, c) {
			return nil
		}
		info, err := c.Do(ctx, "COMMAND", "INFO", "WAITAOF").Slice()
		if err != nil {
			return fmt.Errorf("redisstore: New: WithDurableRevoke: %w", err)
		}
		if len(info) == 0 || info[0] == nil {
			return fmt.Errorf("redisstore: New: WithDurableRevoke: %s lacks WAITAOF (Redis 7.2 or later needed)", serverName(c))
		}
		p, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return fmt.Errorf("redisstore: New: WithDurableRevoke: %w", err)
		}
		if infoField(p, "aof_enabled") != "1" {
			return fmt.Errorf("redisstore: New: WithDurableRevoke: %s has appendonly off", serverName(c))
		}
		return nil
	})
}

// Close marks the Store closed: later calls return [apitoken.ErrClosed].
// It does not close the client, which the caller owns. It is idempotent
// and always returns nil.
func (s *Store) Close(context.Context) error {
	s.closed.Store(true)
	return nil
}

// String describes the Store without its contents.
func (s *Store) String() string { return "redisstore.Store(" + s.k.prefix + ")" }

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return apitoken.ErrClosed
	}
	return ctx.Err()
}

// run runs a script. The scripts are loaded by New, so this is one EVALSHA
// round trip (two, once, after a server restart flushed the script cache).
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	return sc.Run(ctx, s.client, keys, args...)
}

func (s *Store) args(rest ...any) []any {
	return append([]any{s.k.prefix}, rest...)
}

// hashKeys returns the keys of t's ID and hashes, for Create and Update.
func (s *Store) hashKeys(t *apitoken.Token) []string {
	ks := []string{s.k.id(t.ID), s.k.record(t.Hash)}
	if !t.PrevHash.IsZero() {
		ks = append(ks, s.k.record(t.PrevHash))
	}
	return ks
}

// Create implements [apitoken.Store]. It is one script: the ID and both
// hashes are claimed with set-if-absent semantics, and the per-owner count
// and the insert are one atomic step.
func (s *Store) Create(ctx context.Context, t *apitoken.Token, maxPerOwner int) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if t == nil || t.ID == "" || t.Hash.IsZero() {
		return errors.New("redisstore: create: token needs an ID and a hash")
	}
	if t.Hash == t.PrevHash {
		return fmt.Errorf("redisstore: create %s: %w: Hash equals PrevHash", t.ID, apitoken.ErrConflict)
	}
	fields, err := encode(t, t.Version)
	if err != nil {
		return fmt.Errorf("redisstore: create %s: %w", t.ID, err)
	}
	args := s.args(fields...)
	args = append(args, max(maxPerOwner, 0), s.retention)
	code, err := s.run(ctx, scriptCreate, s.hashKeys(t), args...).Int()
	if err != nil {
		return s.k.wrap("create "+t.ID, err)
	}
	switch code {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("redisstore: create %s: %w: duplicate ID", t.ID, apitoken.ErrConflict)
	case 2:
		return fmt.Errorf("redisstore: create %s: %w: duplicate hash", t.ID, apitoken.ErrConflict)
	case 3:
		return fmt.Errorf("redisstore: create %s: %w", t.ID, apitoken.ErrTooManyTokens)
	}
	return fmt.Errorf("redisstore: create %s: unexpected script reply %d", t.ID, code)
}

// Get implements [apitoken.Store].
func (s *Store) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	op := "get " + id
	v, err := s.run(ctx, scriptGet, []string{s.k.id(id)}, s.k.prefix).Slice()
	if isNil(err) {
		return nil, fmt.Errorf("redisstore: %s: %w", op, apitoken.ErrNotFound)
	}
	if err != nil {
		return nil, s.k.wrap(op, err)
	}
	return s.decode(op, v, apitoken.Hash{})
}

// decode decodes a script's reply {via, fields...}.
func (s *Store) decode(op string, v []any, h apitoken.Hash) (*apitoken.Token, error) {
	if len(v) < 1+nFields {
		return nil, fmt.Errorf("redisstore: %s: unexpected script reply", op)
	}
	via, _ := v[0].(string)
	return s.decodeFields(op, via, v[1:], h)
}

func (s *Store) decodeFields(op, via string, fields []any, h apitoken.Hash) (*apitoken.Token, error) {
	t, at, err := decode(via, fields, h)
	if err != nil {
		return nil, &KeyError{Op: op, Key: s.k.redact(s.k.record(at)), Reason: err.Error()}
	}
	return t, nil
}

// GetByHash implements [apitoken.Store] with one HMGET of the record its
// hash addresses: one round trip, no script. A previous hash (within a
// grace period after Regenerate) holds an alias to the current hash, which
// costs a second round trip. The result is the caller's own.
func (s *Store) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if h.IsZero() {
		return nil, apitoken.ErrNotFound
	}
	const op = "get by hash"
	key := s.k.record(h)
	v, err := s.client.HMGet(ctx, key, recordFields...).Result()
	if err != nil {
		return nil, s.keyErr(op, key, err)
	}
	if v[fID] != nil {
		return s.decodeFields(op, "", v, h)
	}
	cur, _ := v[nFields].(string)
	if err := s.empty(op, key, v); err != nil || cur == "" {
		return nil, cmp.Or(err, apitoken.ErrNotFound)
	}
	var ch apitoken.Hash
	if decodeHash(&ch, cur) != nil {
		return nil, &KeyError{Op: op, Key: s.k.redact(key), Reason: "corrupt previous-hash alias"}
	}
	key = s.k.record(ch)
	if v, err = s.client.HMGet(ctx, key, recordFields...).Result(); err != nil {
		return nil, s.keyErr(op, key, err)
	}
	if v[fID] == nil {
		return nil, cmp.Or(s.empty(op, key, v), apitoken.ErrNotFound)
	}
	t, err := s.decodeFields(op, cur, v, h)
	if err != nil || t.PrevHash != h {
		return nil, cmp.Or(err, apitoken.ErrNotFound) // a stale alias
	}
	return t, nil
}

// keyErr names key in a command's error if it is about the key's type.
func (s *Store) keyErr(op, key string, err error) error {
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		return &KeyError{Op: op, Key: s.k.redact(key), Reason: "wrong type"}
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// empty reports a record without an ID that still has other fields.
func (s *Store) empty(op, key string, v []any) error {
	for _, f := range v[1:nFields] {
		if f != nil {
			return &KeyError{Op: op, Key: s.k.redact(key), Reason: "corrupt record: missing field id"}
		}
	}
	return nil
}

// runFast runs a lean hot-path script and, if the server refuses it (a bad
// key, a corrupt record or budget), its diagnosing version, which either
// answers or names the bad key. The lean script fails before writing, so
// nothing is done twice.
func (s *Store) runFast(ctx context.Context, fast, full *redis.Script, keys []string, args ...any) *redis.Cmd {
	return runFast(ctx, s.client, fast, full, keys, args...)
}

func runFast(ctx context.Context, c redis.Scripter, fast, full *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := fast.Run(ctx, c, keys, args...)
	var re redis.Error
	if err := cmd.Err(); err != nil && !isNil(err) && errors.As(err, &re) {
		return full.Run(ctx, c, keys, args...)
	}
	return cmd
}

// GetByHashAllow implements [apitoken.LookupLimiter]: the lookup and the
// GCRA decision are one script, one round trip, on a single server and on
// a Cluster alike (the token's keys and its budget share the namespace's
// slot). The script charges the budget and with the limit
// [apitoken.LimitDefaults.LimitFor] gives (a token's override, its roles'
// limits, the policy's defaults) only when the token is neither revoked
// nor expired at now (nor, found by a previous hash, past its grace);
// otherwise the Decision is nil. The budget is charged under Redis server
// time, as [Store.Allow] does; now decides only whether the token is
// revoked or expired.
func (s *Store) GetByHashAllow(ctx context.Context, h apitoken.Hash, defaults apitoken.LimitDefaults, now time.Time) (*apitoken.Token, *apitoken.Decision, error) {
	if err := s.check(ctx); err != nil {
		return nil, nil, err
	}
	if h.IsZero() {
		return nil, nil, apitoken.ErrNotFound
	}
	const op = "get by hash"
	v, err := s.runFast(ctx, fastLookupAllow, scriptLookupAllow, []string{s.k.record(h)}, s.lookupArgs(defaults, now)...).Slice()
	if isNil(err) {
		return nil, nil, apitoken.ErrNotFound
	}
	if err != nil {
		return nil, nil, s.k.wrap(op, err)
	}
	if len(v) != nFields+1 && len(v) != nFields+5 {
		return nil, nil, fmt.Errorf("redisstore: %s: unexpected script reply", op)
	}
	// The fields are those of GetByHash's HMGET; the last one (cur) names
	// the current hash of a token found by its previous hash.
	via, _ := v[nFields].(string)
	t, err := s.decodeFields(op, via, v, h)
	if err != nil || len(v) == nFields+1 {
		return t, nil, err
	}
	_, limit := defaults.LimitFor(t)
	d, err := decision(v[nFields+1:], limit, now)
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return t, &d, nil
}

// limitArgs holds the script arguments for one set of limit defaults,
// formatted once: a Validator passes the same defaults on every call.
type limitArgs struct {
	d    apitoken.LimitDefaults // Roles is a copy
	args []any                  // prefix, "" (for now), org rate, burst, user rate, burst, "0" (offset), role triples
}

// lookupArgs returns the ARGV of fastLookupAllow for defaults at now.
func (s *Store) lookupArgs(d apitoken.LimitDefaults, now time.Time) []any {
	c := s.limits.Load()
	if c == nil || c.d.Org != d.Org || c.d.User != d.User || !maps.Equal(c.d.Roles, d.Roles) {
		c = &limitArgs{d: d}
		c.d.Roles = maps.Clone(d.Roles)
		c.args = []any{s.k.prefix, "", formatRate(d.Org.Rate), d.Org.Burst, formatRate(d.User.Rate), d.User.Burst, "0"}
		for _, role := range slices.Sorted(maps.Keys(d.Roles)) {
			l := d.Roles[role]
			c.args = append(c.args, role, formatRate(l.Rate), l.Burst)
		}
		s.limits.Store(c)
	}
	args := make([]any, len(c.args))
	copy(args, c.args)
	args[1] = strconv.FormatInt(now.UnixMicro(), 10)
	if s.offset.f != nil {
		args[6] = s.offset.arg()
	}
	return args
}

// Update implements [apitoken.Store].
func (s *Store) Update(ctx context.Context, t *apitoken.Token) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if t == nil || t.ID == "" {
		return errors.New("redisstore: update: token needs an ID")
	}
	op := "update " + t.ID
	if t.Hash.IsZero() || t.Hash == t.PrevHash {
		return fmt.Errorf("redisstore: %s: %w: hash in use", op, apitoken.ErrConflict)
	}
	fields, err := encode(t, t.Version+1)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	args := s.args(fields...)
	args = append(args, strconv.FormatInt(t.Version, 10), s.retention)
	code, err := s.run(ctx, scriptUpdate, s.hashKeys(t), args...).Int()
	if err != nil {
		return s.k.wrap(op, err)
	}
	switch code {
	case 0:
		t.Version++
		return nil
	case 1:
		return fmt.Errorf("redisstore: %s: %w", op, apitoken.ErrNotFound)
	case 2:
		return fmt.Errorf("redisstore: %s: %w: version %d is stale", op, apitoken.ErrConflict, t.Version)
	case 3:
		return fmt.Errorf("redisstore: %s: %w: hash in use", op, apitoken.ErrConflict)
	}
	return fmt.Errorf("redisstore: %s: unexpected script reply %d", op, code)
}

// Revoke implements [apitoken.Store]. Under [WithDurableRevoke] it returns
// once the revocation is on disk (or with [ErrNotDurable]).
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	op := "revoke " + id
	us, err := micros("at", at)
	if err != nil || us == "" {
		return fmt.Errorf("redisstore: %s: bad instant", op)
	}
	v, err := s.runDurable(ctx, scriptRevoke, []string{s.k.id(id)}, s.args(us, s.retention)...)
	if err != nil {
		return s.k.wrap(op, err)
	}
	if n, _ := v.(int64); n == 1 {
		return fmt.Errorf("redisstore: %s: %w", op, apitoken.ErrNotFound)
	}
	return nil
}

// RevokeAll implements [apitoken.Store]: one script revokes every token of
// the owner (its kind and ID). A token whose record is unreadable is
// reported (a [*KeyError]) after the others are revoked. Under
// [WithDurableRevoke] it returns once the revocations are on disk (or with
// [ErrNotDurable]).
func (s *Store) RevokeAll(ctx context.Context, owner apitoken.Owner, at time.Time) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	us, err := micros("at", at)
	if err != nil || us == "" {
		return 0, errors.New("redisstore: revoke all: bad instant")
	}
	v, err := s.runDurable(ctx, scriptRevokeAll, []string{s.k.owner(owner)}, s.args(us, s.retention, owner.ID, kindString(owner.Kind))...)
	if err != nil {
		return 0, s.k.wrap("revoke all", err)
	}
	r, _ := v.([]any)
	if len(r) == 0 {
		return 0, errors.New("redisstore: revoke all: unexpected script reply")
	}
	n, _ := r[0].(int64)
	return int(n), s.k.badKeys("revoke all", r[1:])
}

// Delete implements [apitoken.Store]. Under [WithDurableRevoke] it returns
// once the deletion is on disk (or with [ErrNotDurable]).
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	op := "delete " + id
	v, err := s.runDurable(ctx, scriptDelete, []string{s.k.id(id)}, s.k.prefix)
	if err != nil {
		return s.k.wrap(op, err)
	}
	if n, _ := v.(int64); n == 1 {
		return fmt.Errorf("redisstore: %s: %w", op, apitoken.ErrNotFound)
	}
	return nil
}

// listBudget bounds the index entries one List script looks at, so a
// sparse filter never blocks the server for long; List then continues
// with another script.
const listBudget = 2000

// List implements [apitoken.Store]. It walks the most selective index (the
// owner's (kind and ID), else the org's, else the kind's, else all IDs) in ID order and
// filters the rest; the cursor is the last ID returned, so pages are
// stable under concurrent creates and deletes.
func (s *Store) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	if err := s.check(ctx); err != nil {
		return apitoken.Page{}, err
	}
	after := ""
	if f.Cursor != "" {
		var err error
		if after, err = apitoken.DecodeCursor(f.Cursor); err != nil {
			return apitoken.Page{}, err
		}
	}
	if !f.Owner.IsZero() && f.Kind != 0 && f.Kind != f.Owner.Kind {
		return apitoken.Page{}, nil // no token has two kinds
	}
	index := s.k.all()
	switch {
	case !f.Owner.IsZero():
		index = s.k.owner(f.Owner)
		f.Kind = f.Owner.Kind
	case f.OrgID != "":
		index = s.k.org(f.OrgID)
	case f.Kind != 0:
		index = s.k.kind(f.Kind)
	}
	kind := ""
	if f.Kind != 0 {
		kind = kindString(f.Kind)
	}
	size := f.PageSize()
	var p apitoken.Page
	for {
		v, err := s.run(ctx, scriptList, []string{index},
			s.args(after, size-len(p.Tokens), f.Owner.ID, f.OrgID, kind, listBudget)...).Slice()
		if err != nil {
			return apitoken.Page{}, s.k.wrap("list", err)
		}
		if len(v) < 2 || (len(v)-2)%(1+nFields) != 0 {
			return apitoken.Page{}, errors.New("redisstore: list: unexpected script reply")
		}
		status, _ := v[0].(string)
		after, _ = v[1].(string)
		for i := 2; i < len(v); i += 1 + nFields {
			via, _ := v[i].(string)
			t, err := s.decodeFields("list", via, v[i+1:i+1+nFields], apitoken.Hash{})
			if err != nil {
				return apitoken.Page{}, err
			}
			p.Tokens = append(p.Tokens, t)
		}
		switch status {
		case "budget":
			if err := ctx.Err(); err != nil {
				return apitoken.Page{}, err
			}
			continue
		case "more":
			p.Next = apitoken.EncodeCursor(after)
		}
		return p, nil
	}
}

// touchBatch bounds the uses one Touch script carries.
const touchBatch = 1000

// Touch implements [apitoken.Store]: one script per 1,000 uses sets each
// last-used time to the later of the stored and given ones (and moves the
// token in the idle index). A token whose record is unreadable is reported
// (a [*KeyError]) after the others are touched.
func (s *Store) Touch(ctx context.Context, uses []apitoken.Use) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var errs []error
	for len(uses) > 0 {
		n := min(len(uses), touchBatch)
		args := make([]any, 0, 1+2*n)
		args = append(args, s.k.prefix)
		for _, u := range uses[:n] {
			us, err := micros("At", u.At)
			if err != nil || us == "" {
				continue // the zero time never moves a last use; out of range cannot be stored
			}
			args = append(args, u.ID, us)
		}
		uses = uses[n:]
		if len(args) == 1 {
			continue
		}
		v, err := s.run(ctx, scriptTouch, []string{s.k.lastUsed()}, args...).Slice()
		if err != nil {
			return s.k.wrap("touch", err)
		}
		if err := s.k.badKeys("touch", v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pruneChunk bounds the deletions of one Prune script, and pruneBudget
// the candidates it looks at. A script blocks every other client of the
// server while it runs, and pruners at once keep one queued: 4 pruners
// over 100,000 idle tokens, at 500 deletions a script and no lease, held
// validations up to 60 ms (p99 350-490× the idle p99); at 4 a script, 7-14×;
// at 2 with the lease, 2.2-2.6× (see TestPrunersAtScaleLong).
const (
	pruneChunk  = 2
	pruneBudget = 2000
	pruneLease  = 30 * time.Second
)

// scriptRelease deletes KEYS[1] if it still holds ARGV[1].
var scriptRelease = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Prune implements [apitoken.Store]. Candidates come from the sorted sets
// of last uses and of ends, in score order (no SCAN); each is re-checked
// against its record in the script that deletes it, a few tokens a script,
// so that validations are not held behind a long one. One Prune at a time
// works on a namespace, under a lease key ({ns}:pl, 30 s TTL): a Prune
// that finds another's lease deletes nothing and returns 0, leaving the
// tokens to the one at work. A candidate whose keys
// Redis has already dropped (see [WithRetention]) is not counted, and its
// entries in every index are removed. A token whose record is unreadable
// is skipped and reported (a [*KeyError]) with the count of the others
// deleted.
func (s *Store) Prune(ctx context.Context, r apitoken.PruneRequest) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if r.Limit <= 0 {
		return 0, errors.New("redisstore: prune: limit must be positive")
	}
	if r.IdleBefore.IsZero() && r.EndedBefore.IsZero() {
		return 0, nil
	}
	bound := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return ceilMicros(t)
	}
	ib, eb := bound(r.IdleBefore), bound(r.EndedBefore)
	lease := rand.Text()
	held, err := s.client.SetNX(ctx, s.k.pruneLease(), lease, pruneLease).Result()
	if err != nil {
		return 0, s.k.wrap("prune", err)
	}
	if !held {
		return 0, nil // another Prune is at work
	}
	defer scriptRelease.Run(context.WithoutCancel(ctx), s.client, []string{s.k.pruneLease()}, lease)
	n := 0
	var errs []error
	for n < r.Limit {
		chunk := min(r.Limit-n, pruneChunk)
		v, err := s.run(ctx, scriptPrune, []string{s.k.lastUsed(), s.k.ended()},
			s.args(ib, eb, chunk, pruneBudget)...).Slice()
		if err != nil {
			return n, s.k.wrap("prune", err)
		}
		if len(v) < 2 {
			return n, errors.New("redisstore: prune: unexpected script reply")
		}
		d, _ := v[0].(int64)
		n += int(d)
		bad := s.k.badKeys("prune", v[2:])
		if bad != nil {
			errs = append(errs, bad)
		}
		// Stop when the candidates are exhausted, or when a whole budget
		// went on records that cannot be read (the next call would meet
		// them again).
		if status, _ := v[1].(string); (status != "budget" && int(d) < chunk) || (d == 0 && bad != nil) {
			break
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
	return n, errors.Join(errs...)
}

// runDurable runs a script and, under WithDurableRevoke, WAITAOF after it
// on the same connection of the key's primary.
func (s *Store) runDurable(ctx context.Context, sc *redis.Script, keys []string, args ...any) (any, error) {
	if s.durable == nil {
		return s.run(ctx, sc, keys, args...).Result()
	}
	var node *redis.Client
	switch c := s.client.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		var err error
		if node, err = c.MasterForKey(ctx, keys[0]); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		pipe := node.Pipeline()
		cmd := sc.EvalSha(ctx, pipe, keys, args...)
		wait := pipe.Do(ctx, "WAITAOF", 1, s.durable.replicas, s.durable.timeout.Milliseconds())
		_, _ = pipe.Exec(ctx)
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") && attempt == 0 {
			if err := sc.Load(ctx, node).Err(); err != nil {
				return nil, err
			}
			continue
		}
		v, err := cmd.Result()
		if err != nil {
			return nil, err
		}
		acks, err := wait.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotDurable, err)
		}
		if len(acks) != 2 || acks[0] < 1 || acks[1] < int64(s.durable.replicas) {
			return nil, fmt.Errorf("%w: WAITAOF confirmed %v (want local 1, replicas %d) within %v", ErrNotDurable, acks, s.durable.replicas, s.durable.timeout)
		}
		return v, nil
	}
}
