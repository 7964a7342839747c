package redisstore_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// fixture is a Store in a known namespace with a few tokens.
type fixture struct {
	t      *testing.T
	client *redis.Client
	store  *redisstore.Store
	ns     string // "{ns}:"
	now    time.Time
	n      byte
}

func newFixture(t *testing.T, opts ...redisstore.Option) *fixture {
	t.Helper()
	client := singleClient(t, testservers.StartRedis(t))
	ns := storetest.Namespace(t)
	opts = append([]redisstore.Option{redisstore.WithKeyPrefix(ns)}, opts...)
	s, err := redisstore.New(t.Context(), client, opts...)
	if err != nil {
		t.Fatalf("New error = %v", err)
	}
	return &fixture{t: t, client: client, store: s, ns: "{" + ns + "}:", now: time.Now().Truncate(time.Second)}
}

// token creates a token of owner with a fresh ID and hash.
func (f *fixture) token(owner string, change func(*apitoken.Token)) *apitoken.Token {
	f.t.Helper()
	f.n++
	x := &apitoken.Token{ID: "id-" + hex.EncodeToString([]byte{f.n}), Kind: apitoken.KindUser, OwnerID: owner,
		OrgID: "org_1", Name: "t", CreatedAt: f.now, UpdatedAt: f.now, Version: 1}
	x.Hash[0], x.Hash[31] = f.n, 0xee
	if change != nil {
		change(x)
	}
	if err := f.store.Create(f.t.Context(), x, 0); err != nil {
		f.t.Fatalf("Create error = %v", err)
	}
	return x
}

func (f *fixture) recordKey(x *apitoken.Token) string {
	return f.ns + "h:" + hex.EncodeToString(x.Hash[:])
}

func (f *fixture) do(args ...any) {
	f.t.Helper()
	if err := f.client.Do(f.t.Context(), args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		f.t.Fatalf("%v: %v", args, err)
	}
}

// wantKeyError checks that err is a *KeyError naming key (redacted: a hash
// is cut to 8 hex digits) and holds no full hash.
func wantKeyError(t *testing.T, call string, err error, key, reason string, hashes ...apitoken.Hash) {
	t.Helper()
	var ke *redisstore.KeyError
	if !errors.As(err, &ke) {
		t.Errorf("%s error = %v, want a *redisstore.KeyError", call, err)
		return
	}
	want := key
	if i := strings.Index(key, "}:h:"); i >= 0 {
		want = key[:i+4+8] + "…"
	}
	if ke.Key != want || !strings.Contains(ke.Reason, reason) {
		t.Errorf("%s error = %v; want key %q, reason containing %q", call, err, want, reason)
	}
	for _, h := range hashes {
		if strings.Contains(err.Error(), hex.EncodeToString(h[:])) {
			t.Errorf("%s error %q holds a full hash", call, err)
		}
	}
}

func TestWrongTypeRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	bad, good := f.token("user_1", nil), f.token("user_1", nil)
	f.do("DEL", f.recordKey(bad))
	f.do("RPUSH", f.recordKey(bad), "x")

	_, err := f.store.GetByHash(ctx, bad.Hash)
	wantKeyError(t, "GetByHash(token whose record is a list)", err, f.recordKey(bad), "wrong type", bad.Hash)
	_, err = f.store.Get(ctx, bad.ID)
	wantKeyError(t, "Get(token whose record is a list)", err, f.recordKey(bad), "wrong type", bad.Hash)
	_, _, err = f.store.GetByHashAllow(ctx, bad.Hash, apitoken.LimitDefaults{}, f.now)
	wantKeyError(t, "GetByHashAllow(token whose record is a list)", err, f.recordKey(bad), "wrong type", bad.Hash)
	if got, err := f.store.GetByHash(ctx, good.Hash); err != nil || got.ID != good.ID {
		t.Errorf("GetByHash(other token) = %v, %v; want it, nil", got, err)
	}

	// Through a Validator: fails closed for the bad token only.
	pol := apitoken.Policy{Prefix: prefix}
	v := newValidator(t, f.store, pol, apitoken.WithLimiter(f.store))
	okTok, _ := issue(t, f.store, pol, apitoken.Spec{})
	if _, err := v.Validate(ctx, okTok, req); err != nil {
		t.Errorf("Validate(a good token) next to a bad key error = %v, want nil", err)
	}
}

func TestWrongTypeIndexes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	a, b := f.token("user_1", nil), f.token("user_2", nil)

	// The ID index of a is a hash: Get(a) names it, b is fine.
	idKey := f.ns + "i:" + a.ID
	f.do("DEL", idKey)
	f.do("HSET", idKey, "x", "y")
	_, err := f.store.Get(ctx, a.ID)
	wantKeyError(t, "Get(token whose ID key is a hash)", err, idKey, "wrong type")
	wantKeyError(t, "Revoke(token whose ID key is a hash)", f.store.Revoke(ctx, a.ID, f.now), idKey, "wrong type")
	if _, err := f.store.Get(ctx, b.ID); err != nil {
		t.Errorf("Get(other token) error = %v, want nil", err)
	}

	// user_2's owner index is a string: listing and revoking user_2 name
	// it; user_1 and the full listing are unaffected.
	c := f.token("user_3", nil)
	ownerKey := f.ns + "ow:1:user_3"
	f.do("DEL", ownerKey)
	f.do("SET", ownerKey, "x")
	_, err = f.store.List(ctx, apitoken.Filter{Owner: apitoken.UserOwner("user_3")})
	wantKeyError(t, "List(owner whose index is a string)", err, ownerKey, "wrong type")
	_, err = f.store.RevokeAll(ctx, apitoken.UserOwner("user_3"), f.now)
	wantKeyError(t, "RevokeAll(owner whose index is a string)", err, ownerKey, "wrong type")
	if p, err := f.store.List(ctx, apitoken.Filter{Owner: apitoken.UserOwner("user_2")}); err != nil || len(p.Tokens) != 1 {
		t.Errorf("List(user_2) = %d tokens, %v; want 1, nil", len(p.Tokens), err)
	}
	// A write that would touch the bad index is refused before writing.
	d := &apitoken.Token{ID: "id-new", Kind: apitoken.KindUser, OwnerID: "user_3", CreatedAt: f.now, UpdatedAt: f.now, Version: 1}
	d.Hash[0] = 0x77
	wantKeyError(t, "Create(token of the owner whose index is a string)", f.store.Create(ctx, d, 0), ownerKey, "wrong type")
	if _, err := f.store.GetByHash(ctx, d.Hash); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetByHash(token whose Create was refused) error = %v, want ErrNotFound (nothing written)", err)
	}
	wantKeyError(t, "Delete(token of the owner whose index is a string)", f.store.Delete(ctx, c.ID), ownerKey, "wrong type")
	if _, err := f.store.Get(ctx, c.ID); err != nil {
		t.Errorf("Get(token whose Delete was refused) error = %v, want nil (nothing deleted)", err)
	}

	// A previous-hash alias with a corrupt target, or pointing at a token
	// that no longer has that previous hash.
	var prev apitoken.Hash
	prev[0], prev[1] = 0xaa, 0xbb
	aliasKey := f.ns + "h:" + hex.EncodeToString(prev[:])
	f.do("HSET", aliasKey, "cur", "not hex")
	_, err = f.store.GetByHash(ctx, prev)
	wantKeyError(t, "GetByHash(previous hash whose alias is corrupt)", err, aliasKey, "corrupt", prev)
	f.do("HSET", aliasKey, "cur", hex.EncodeToString(b.Hash[:]))
	if _, err := f.store.GetByHash(ctx, prev); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetByHash(stale alias to a token without that previous hash) error = %v, want ErrNotFound", err)
	}
	if _, _, err := f.store.GetByHashAllow(ctx, prev, apitoken.LimitDefaults{}, f.now); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetByHashAllow(stale alias) error = %v, want ErrNotFound", err)
	}

	// The budget of a user is corrupt: the lookup that would charge it
	// names it; the token is otherwise fine.
	f.do("SET", f.ns+"rl:user:user_2", "garbage")
	_, _, err = f.store.GetByHashAllow(ctx, b.Hash, apitoken.LimitDefaults{User: apitoken.Limit{Rate: 1, Burst: 1}}, f.now)
	wantKeyError(t, "GetByHashAllow(token whose user's budget is corrupt)", err, f.ns+"rl:user:user_2", "corrupt", b.Hash)
	if _, _, err := f.store.GetByHashAllow(ctx, a.Hash, apitoken.LimitDefaults{User: apitoken.Limit{Rate: 1, Burst: 1}}, f.now); err != nil {
		t.Errorf("GetByHashAllow(another user's token) error = %v, want nil", err)
	}

	// The budget key of a token is a list.
	budget := f.ns + "rl:token:x"
	f.do("RPUSH", budget, "x")
	_, err = f.store.Allow(ctx, apitoken.TokenKey("x"), apitoken.Limit{Rate: 1, Burst: 1}, f.now)
	wantKeyError(t, "Allow(budget key that is a list)", err, budget, "wrong type")
	f.do("SET", f.ns+"rl:token:y", "not a number")
	_, err = f.store.Allow(ctx, apitoken.TokenKey("y"), apitoken.Limit{Rate: 1, Burst: 1}, f.now)
	wantKeyError(t, "Allow(budget key holding text)", err, f.ns+"rl:token:y", "corrupt")
}

func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	old := f.now.AddDate(-1, 0, 0)
	aged := func(x *apitoken.Token) { x.CreatedAt = old }
	body, instant, good := f.token("user_1", aged), f.token("user_1", aged), f.token("user_1", aged)
	f.do("HSET", f.recordKey(body), "j", "{not json")
	f.do("HSET", f.recordKey(instant), "c", "yesterday")

	_, err := f.store.GetByHash(ctx, body.Hash)
	wantKeyError(t, "GetByHash(record with a corrupt body)", err, f.recordKey(body), "corrupt record", body.Hash)
	_, err = f.store.Get(ctx, instant.ID)
	wantKeyError(t, "Get(record with a corrupt instant)", err, f.recordKey(instant), "corrupt record", instant.Hash)
	// The script meets the record with a corrupt instant before the Go
	// side decodes the corrupt body, and names it.
	_, err = f.store.List(ctx, apitoken.Filter{})
	wantKeyError(t, "List(over two corrupt records)", err, f.recordKey(instant), "corrupt record", instant.Hash, body.Hash)

	// Batch operations do the rest of their work and report the bad key.
	err = f.store.Touch(ctx, []apitoken.Use{{ID: instant.ID, At: f.now}, {ID: good.ID, At: f.now}})
	wantKeyError(t, "Touch(a corrupt and a good token)", err, f.recordKey(instant), "corrupt record", instant.Hash)
	if got, err := f.store.Get(ctx, good.ID); err != nil || !got.LastUsedAt.Equal(f.now) {
		t.Errorf("Get(good token) after a Touch batch with a corrupt one = %v, %v; want LastUsedAt %v", got, err, f.now)
	}
	other := f.token("user_1", aged)
	n, err := f.store.RevokeAll(ctx, apitoken.UserOwner("user_1"), f.now)
	wantKeyError(t, "RevokeAll(owner with a corrupt record)", err, f.recordKey(instant), "corrupt record", instant.Hash)
	if n != 3 { // body (its fields the script reads are fine), good, other
		t.Errorf("RevokeAll(owner with a corrupt record) = %d, want 3 (every readable token)", n)
	}
	if got, err := f.store.Get(ctx, other.ID); err != nil || !got.Revoked() {
		t.Errorf("Get(other token of the owner) after RevokeAll = %v, %v; want revoked", got, err)
	}
	n, err = f.store.Prune(ctx, apitoken.PruneRequest{IdleBefore: f.now.AddDate(0, -1, 0), EndedBefore: f.now.Add(time.Second), Limit: 10})
	wantKeyError(t, "Prune(over a corrupt record)", err, f.recordKey(instant), "corrupt record", instant.Hash)
	if n != 3 {
		t.Errorf("Prune(4 revoked tokens, one corrupt) = %d, want 3", n)
	}
	if _, err := f.store.Get(ctx, good.ID); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Get(revoked good token) after Prune error = %v, want ErrNotFound", err)
	}
}

// TestRetention checks Redis's own expiry of ended tokens, the backstop
// for a Pruner that never runs.
func TestRetention(t *testing.T) {
	t.Parallel()
	f := newFixture(t, redisstore.WithRetention(time.Hour))
	ctx := t.Context()
	expireTime := func(key string) int64 {
		t.Helper()
		v, err := f.client.Do(ctx, "PEXPIRETIME", key).Int64()
		if err != nil {
			t.Fatalf("PEXPIRETIME %s: %v", key, err)
		}
		return v
	}
	wantExpiry := func(what string, x *apitoken.Token, want int64) {
		t.Helper()
		keys := []string{f.recordKey(x), f.ns + "i:" + x.ID}
		if !x.PrevHash.IsZero() {
			keys = append(keys, f.ns+"h:"+hex.EncodeToString(x.PrevHash[:]))
		}
		for _, k := range keys {
			if got := expireTime(k); got != want {
				t.Errorf("%s: PEXPIRETIME of %s = %d, want %d", what, strings.TrimPrefix(k, f.ns), got, want)
			}
		}
	}
	exp := f.now.Add(24 * time.Hour)
	x := f.token("user_1", func(x *apitoken.Token) {
		x.ExpiresAt = exp
		x.PrevHash[0], x.PrevExpiresAt = 0x99, exp
	})
	wantExpiry("token expiring in a day", x, exp.Add(time.Hour).UnixMilli())

	never := f.token("user_1", nil)
	wantExpiry("token that never expires", never, -1)

	if err := f.store.Revoke(ctx, never.ID, f.now); err != nil {
		t.Fatal(err)
	}
	wantExpiry("token revoked now", never, f.now.Add(time.Hour).UnixMilli())

	u, err := f.store.Get(ctx, x.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.ExpiresAt, u.PrevHash, u.PrevExpiresAt = time.Time{}, apitoken.Hash{}, time.Time{}
	if err := f.store.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	wantExpiry("token updated to never expire", u, -1)

	// An end already past the retention is left to Prune: no key vanishes.
	past := f.token("user_1", func(x *apitoken.Token) { x.ExpiresAt = f.now.Add(-2 * time.Hour) })
	wantExpiry("token that ended before the retention", past, -1)

	// When Redis has dropped a token's keys, the indexes it leaves behind
	// are skipped and cleaned: not listed, not counted, not pruned.
	f.do("DEL", f.recordKey(x), f.ns+"i:"+x.ID)
	p, err := f.store.List(ctx, apitoken.Filter{Owner: apitoken.UserOwner("user_1")})
	if err != nil || len(p.Tokens) != 2 {
		t.Errorf("List(user_1) after Redis dropped one of 3 tokens = %d tokens, %v; want 2", len(p.Tokens), err)
	}
	if n, err := f.client.ZCard(ctx, f.ns+"ow:1:user_1").Result(); err != nil || n != 2 {
		t.Errorf("owner index after List = %d entries, %v; want 2 (the dropped one cleaned)", n, err)
	}
	if n, err := f.store.Prune(ctx, apitoken.PruneRequest{IdleBefore: f.now.Add(time.Second), Limit: 10}); err != nil || n != 2 {
		t.Errorf("Prune(all idle) = %d, %v; want 2 (the dropped token is not counted)", n, err)
	}
	// Prune cleans the indexes it walks; List cleans the one it walks.
	for _, flt := range []apitoken.Filter{{OrgID: "org_1"}, {Kind: apitoken.KindUser}} {
		if p, err := f.store.List(ctx, flt); err != nil || len(p.Tokens) != 0 {
			t.Errorf("List(%+v) after pruning everything = %d tokens, %v; want 0", flt, len(p.Tokens), err)
		}
	}
	for _, k := range []string{"ids", "lu", "end", "ow:1:user_1", "g:org_1", "k:1"} {
		if n, err := f.client.ZCard(ctx, f.ns+k).Result(); err != nil || n != 0 {
			t.Errorf("index %s after pruning everything = %d entries, %v; want 0", k, n, err)
		}
	}
}

func TestRetentionOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, redisstore.WithRetention(0))
	x := f.token("user_1", func(x *apitoken.Token) { x.ExpiresAt = f.now.Add(time.Hour) })
	if v, err := f.client.PTTL(t.Context(), f.recordKey(x)).Result(); err != nil || v != -1*time.Nanosecond && v >= 0 {
		t.Errorf("PTTL of a record with retention off = %v, %v; want none", v, err)
	}
}

func TestEvictionPolicy(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	client := singleClient(t, srv)
	ctx := t.Context()
	if err := client.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := redisstore.New(ctx, client); !errors.Is(err, redisstore.ErrEvictionPolicy) || !strings.Contains(err.Error(), "allkeys-lru") {
		t.Errorf("New on an allkeys-lru server error = %v, want ErrEvictionPolicy naming the policy", err)
	}
	if _, err := redisstore.NewLimiter(ctx, client); !errors.Is(err, redisstore.ErrEvictionPolicy) {
		t.Errorf("NewLimiter on an allkeys-lru server error = %v, want ErrEvictionPolicy", err)
	}
	if _, err := redisstore.New(ctx, client, redisstore.WithEvictionAllowed()); err != nil {
		t.Errorf("New(WithEvictionAllowed) on an allkeys-lru server error = %v, want nil", err)
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	client := singleClient(t, testservers.StartRedis(t))
	for _, tc := range []struct {
		name string
		opt  redisstore.Option
	}{
		{"empty prefix", redisstore.WithKeyPrefix("")},
		{"prefix with a brace", redisstore.WithKeyPrefix("a}b")},
		{"prefix with a newline", redisstore.WithKeyPrefix("a\nb")},
		{"long prefix", redisstore.WithKeyPrefix(strings.Repeat("a", redisstore.MaxKeyPrefixLen+1))},
		{"negative retention", redisstore.WithRetention(-time.Second)},
		{"negative replicas", redisstore.WithDurableRevoke(-1, time.Second)},
		{"zero timeout", redisstore.WithDurableRevoke(0, 0)},
		{"nil option", nil},
	} {
		if _, err := redisstore.New(t.Context(), client, tc.opt); err == nil {
			t.Errorf("New(%s) error = nil, want an error", tc.name)
		}
	}
	if _, err := redisstore.New(t.Context(), nil); err == nil {
		t.Errorf("New(nil client) error = nil, want an error")
	}
}

// TestDurableRevoke checks WithDurableRevoke as far as the server allows:
// New refuses a server without WAITAOF (before Redis 7.2) or without an
// append-only file; on a server with both, Revoke waits for the fsync.
func TestDurableRevoke(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	client := singleClient(t, srv)
	ctx := t.Context()
	opt := redisstore.WithDurableRevoke(0, time.Second)
	info, err := client.Do(ctx, "COMMAND", "INFO", "WAITAOF").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(info) == 0 || info[0] == nil {
		_, err := redisstore.New(ctx, client, opt)
		if err == nil || !strings.Contains(err.Error(), "WAITAOF") {
			t.Errorf("New(WithDurableRevoke) on a server without WAITAOF error = %v, want one naming WAITAOF", err)
		}
		v, _ := client.Info(ctx, "server").Result()
		t.Logf("this redis-server lacks WAITAOF (%s): only the refusal is tested", firstLine(v, "redis_version:"))
		return
	}
	if _, err := redisstore.New(ctx, client, opt); err == nil || !strings.Contains(err.Error(), "appendonly") {
		t.Errorf("New(WithDurableRevoke) with appendonly off error = %v, want one naming appendonly", err)
	}
	if err := client.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, client, opt)
	tok := &apitoken.Token{ID: "id-1", Kind: apitoken.KindOrg, OwnerID: "org_1", CreatedAt: time.Now(), UpdatedAt: time.Now(), Version: 1}
	tok.Hash[0] = 1
	if err := s.Create(ctx, tok, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, tok.ID, time.Now()); err != nil {
		t.Errorf("Revoke under WithDurableRevoke(0 replicas) error = %v, want nil", err)
	}
	if _, err := s.RevokeAll(ctx, apitoken.OrgOwner("org_1"), time.Now()); err != nil {
		t.Errorf("RevokeAll under WithDurableRevoke error = %v, want nil", err)
	}
	if err := s.Delete(ctx, tok.ID); err != nil {
		t.Errorf("Delete under WithDurableRevoke error = %v, want nil", err)
	}
	s2 := newStore(t, client, redisstore.WithDurableRevoke(1, 50*time.Millisecond))
	if err := s2.Create(ctx, tok, 0); err != nil {
		t.Fatal(err)
	}
	if err := s2.Revoke(ctx, tok.ID, time.Now()); !errors.Is(err, redisstore.ErrNotDurable) {
		t.Errorf("Revoke waiting for 1 replica on a server without replicas error = %v, want ErrNotDurable", err)
	}
}

func firstLine(info, prefix string) string {
	for l := range strings.Lines(info) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(l)
		}
	}
	return "unknown version"
}
