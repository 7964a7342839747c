package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/memstore"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// Tests of the Store and Limiter under a real apitoken.Validator.

const prefix = "acme"

// directory gives every user full access in every org.
type directory struct{}

func (directory) Member(context.Context, string, string) (apitoken.Membership, error) {
	return apitoken.Membership{Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}}, nil
}

// issue issues a token on store under pol and returns its plaintext and
// record.
func issue(t testing.TB, store apitoken.Store, pol apitoken.Policy, spec apitoken.Spec) (string, *apitoken.Token) {
	t.Helper()
	iss, err := apitoken.NewIssuer(store, pol)
	if err != nil {
		t.Fatalf("NewIssuer error = %v", err)
	}
	if spec.Name == "" {
		spec.Name = "test"
	}
	if spec.Kind == 0 {
		spec.Kind, spec.OrgID = apitoken.KindOrg, "org_1"
	}
	if spec.Kind == apitoken.KindOrg && len(spec.Grants) == 0 {
		spec.Grants = apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}
	}
	secret, tok, err := iss.Issue(t.Context(), spec)
	if err != nil {
		t.Fatalf("Issue error = %v", err)
	}
	return secret.Reveal(), tok
}

func newValidator(t testing.TB, store apitoken.Store, pol apitoken.Policy, opts ...apitoken.ValidatorOption) *apitoken.Validator {
	t.Helper()
	opts = append(opts, apitoken.WithUsers(directory{}))
	v, err := apitoken.NewValidator(store, pol, opts...)
	if err != nil {
		t.Fatalf("NewValidator error = %v", err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	return v
}

var req = apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead}

// counter is a go-redis hook that counts the round trips a client makes:
// one per command, one per pipeline.
type counter struct {
	n       atomic.Int64
	skipped atomic.Int64
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "cluster" {
			// A Cluster client refreshes its slot map in the background;
			// that is not part of a validation.
			c.skipped.Add(1)
		} else {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRoundTripsPerValidation counts, with a hook on every server
// connection, the round trips one Validate makes with the Store as its own
// limiter: exactly one, for every outcome, on a single server and on a
// Cluster.
func TestRoundTripsPerValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range countedClients {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &counter{}
			client := tc.client(t, c)
			store := newStore(t, client)
			pol := apitoken.Policy{Prefix: prefix,
				OrgRateLimit:     apitoken.Limit{Rate: 1000, Burst: 1000},
				UserRateLimit:    apitoken.Limit{Rate: 1000, Burst: 1000},
				AllowNoRateLimit: true} // for unlimitedTok
			v := newValidator(t, store, pol, apitoken.WithLimiter(store))
			orgTok, _ := issue(t, store, pol, apitoken.Spec{})
			userTok, _ := issue(t, store, pol, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_1"})
			unlimitedTok, _ := issue(t, store, pol, apitoken.Spec{RateLimit: &apitoken.Limit{}})
			revokedTok, revoked := issue(t, store, pol, apitoken.Spec{})
			if err := store.Revoke(t.Context(), revoked.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			deniedTok, _ := issue(t, store, pol, apitoken.Spec{RateLimit: &apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}})
			v.Validate(t.Context(), deniedTok, req) // spend its only request
			unknown := unknownToken(t)

			lim, err := redisstore.NewLimiter(t.Context(), client, redisstore.WithKeyPrefix(storetest.Namespace(t)))
			if err != nil {
				t.Fatal(err)
			}
			plain := newValidator(t, store, pol)                               // GetByHash: one HMGET
			separate := newValidator(t, store, pol, apitoken.WithLimiter(lim)) // GetByHash, then Allow
			for _, x := range []struct {
				name     string
				v        *apitoken.Validator
				token    string
				want     error
				wantTrip int64
			}{
				{"org token, no limiter", plain, orgTok, nil, 1},
				{"unknown token, no limiter", plain, unknownToken(t), apitoken.ErrUnknown, 1},
				{"org token, separate Redis limiter", separate, orgTok, nil, 2},
			} {
				for i := range 3 {
					before := c.n.Load()
					_, err := x.v.Validate(t.Context(), x.token, req)
					if got := c.n.Load() - before; got != x.wantTrip || (x.want == nil) != (err == nil) || !errors.Is(err, x.want) {
						t.Errorf("Validate(%s) #%d = %v with %d round trips, want %v with %d", x.name, i+1, err, got, x.want, x.wantTrip)
					}
				}
			}

			for _, x := range []struct {
				name, token string
				want        error
			}{
				{"org token", orgTok, nil},
				{"user token", userTok, nil},
				{"token without limit", unlimitedTok, nil},
				{"revoked token", revokedTok, apitoken.ErrRevoked},
				{"rate-limited token", deniedTok, apitoken.ErrRateLimited},
				{"unknown token", unknown, apitoken.ErrUnknown},
			} {
				for i := range 3 {
					before := c.n.Load()
					_, err := v.Validate(t.Context(), x.token, req)
					got := c.n.Load() - before
					if !errors.Is(err, x.want) || (x.want == nil && err != nil) {
						t.Fatalf("Validate(%s) error = %v, want %v", x.name, err, x.want)
					}
					if got != 1 {
						t.Errorf("Validate(%s) #%d made %d round trips, want 1", x.name, i+1, got)
					}
				}
			}
		})
	}
}

// unknownToken returns a well-formed token that no Redis store holds: one
// issued into a memory store.
func unknownToken(t testing.TB) string {
	t.Helper()
	tok, _ := issue(t, memstore.New(), apitoken.Policy{Prefix: prefix}, apitoken.Spec{})
	return tok
}

// TestReplicas runs four Validators, each with its own go-redis client
// and its own Store on one Redis, as four replicas of an application would.
//
// (a) The limit is exact across them: 8 goroutines per Validator validate
// one org token for 10 s, and at the same time (on the same replicas) two
// tokens of one user for 10 s. Under a limit of burst 5 and 2 a second,
// each budget allows burst + ⌊rate·elapsed⌋ ± 1 requests (about 25), so a
// replica that charged a budget twice, or one that charged it on a clock
// of its own, would show.
func TestReplicas(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	ns := storetest.Namespace(t)
	limit := apitoken.Limit{Rate: 2, Burst: 5}
	pol := apitoken.Policy{Prefix: prefix, OrgRateLimit: limit, UserRateLimit: limit, AllowNoRateLimit: true} // for fresh below
	var stores []*redisstore.Store
	var vals []*apitoken.Validator
	for range 4 {
		s, err := redisstore.New(t.Context(), singleClient(t, srv), redisstore.WithKeyPrefix(ns))
		require.NoError(t, err)
		stores = append(stores, s)
		vals = append(vals, newValidator(t, s, pol, apitoken.WithLimiter(s)))
	}
	orgTok, org := issue(t, stores[0], pol, apitoken.Spec{})
	user1, _ := issue(t, stores[1], pol, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_7"})
	user2, _ := issue(t, stores[2], pol, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_7"})

	budgets := []struct {
		name   string
		tokens []string
	}{{"org token", []string{orgTok}}, {"user_7's two tokens", []string{user1, user2}}}
	// 10 s and half an interval, so that no refill is due within a
	// quarter-interval of the run's start or end.
	run := 10*time.Second + time.Duration(float64(time.Second)/float64(limit.Rate)/2)
	loads := make([]load, len(budgets))
	var wg sync.WaitGroup
	for i, b := range budgets {
		wg.Go(func() { loads[i] = hammer(t, vals, b.tokens, 8, run) })
	}
	wg.Wait()
	for i, b := range budgets {
		l := loads[i]
		lo, hi := exact(limit, l.elapsed)
		t.Logf("%s: %d allowed, %d limited across 4 Validators × 8 goroutines in %v (burst %d, %g/s): want %d..%d",
			b.name, l.allowed, l.limited, l.elapsed.Round(time.Millisecond), limit.Burst, float64(limit.Rate), lo, hi)
		assert.LessOrEqual(t, l.allowed, hi, "%s: allowed, want ≤ burst + rate·elapsed + 1", b.name)
		assert.GreaterOrEqual(t, l.allowed, lo, "%s: allowed, want ≥ burst + ⌊rate·elapsed⌋ − 1", b.name)
		assert.Positive(t, l.limited, "%s: limited", b.name)
	}

	// (b) Once Revoke returns on one instance, none validates the token.
	fresh, tok := issue(t, stores[0], pol, apitoken.Spec{RateLimit: &apitoken.Limit{}})
	for i, v := range vals {
		if _, err := v.Validate(t.Context(), fresh, req); err != nil {
			t.Fatalf("Validator %d: Validate before Revoke error = %v", i, err)
		}
	}
	iss, err := apitoken.NewIssuer(stores[1], pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Revoke(t.Context(), tok.ID); err != nil {
		t.Fatalf("Revoke error = %v", err)
	}
	for i, v := range vals {
		if _, err := v.Validate(t.Context(), fresh, req); !errors.Is(err, apitoken.ErrRevoked) {
			t.Errorf("Validator %d: Validate after Revoke returned on another instance: error = %v, want ErrRevoked", i, err)
		}
	}
	if n, err := iss.RevokeAll(t.Context(), apitoken.OrgOwner("org_1")); err != nil || n < 1 {
		t.Fatalf("RevokeAll = %d, %v", n, err)
	}
	for i, v := range vals {
		if _, err := v.Validate(t.Context(), orgTok, req); !errors.Is(err, apitoken.ErrRevoked) {
			t.Errorf("Validator %d: Validate(%s) after RevokeAll error = %v, want ErrRevoked", i, org.ID, err)
		}
	}
}

// TestFaultKillRestart kills Redis under load: validation fails closed with
// ErrStoreUnavailable (through the store and through a Redis Limiter), and
// works again once Redis is back, with the same Store, Limiter and
// Validators.
func TestFaultKillRestart(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	ctx := t.Context()
	store := newStore(t, client)
	lim, err := redisstore.NewLimiter(ctx, client, redisstore.WithKeyPrefix("fault_limiter"))
	if err != nil {
		t.Fatal(err)
	}
	pol := apitoken.Policy{Prefix: prefix, OrgRateLimit: apitoken.Limit{Rate: 1e6, Burst: 1 << 20}}
	viaStore := newValidator(t, store, pol, apitoken.WithLimiter(store))
	tokRedis, _ := issue(t, store, pol, apitoken.Spec{})
	mem := memstore.New()
	viaLimiter := newValidator(t, mem, pol, apitoken.WithLimiter(lim))
	tokMem, _ := issue(t, mem, pol, apitoken.Spec{})
	check := func(when string, want error) {
		t.Helper()
		for _, x := range []struct {
			name string
			v    *apitoken.Validator
			tok  string
		}{{"Redis store", viaStore, tokRedis}, {"Redis limiter", viaLimiter, tokMem}} {
			_, err := x.v.Validate(ctx, x.tok, req)
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("%s: Validate via the %s error = %v, want %v", when, x.name, err, want)
			}
		}
	}
	check("before the kill", nil)
	// Keep the data across the restart (the server keeps none of its own).
	if err := client.Save(ctx).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}

	// Load: validators keep validating while the server dies.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	running, failing := make(chan struct{}), make(chan struct{})
	var runningOnce, failingOnce sync.Once
	for w := range 4 {
		v, tok := viaStore, tokRedis
		if w%2 == 1 {
			v, tok = viaLimiter, tokMem
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := v.Validate(ctx, tok, req)
				switch {
				case err == nil:
					if ok.Add(1) == 50 {
						runningOnce.Do(func() { close(running) })
					}
				case errors.Is(err, apitoken.ErrStoreUnavailable):
					if failed.Add(1) == 4 {
						failingOnce.Do(func() { close(failing) })
					}
				default:
					t.Errorf("Validate under load error = %v, want nil or ErrStoreUnavailable", err)
				}
			}
		})
	}
	wait := func(ch chan struct{}) {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	wait(running) // the load is under way
	srv.Kill(t)
	for range 3 {
		check("after the kill", apitoken.ErrStoreUnavailable)
	}
	wait(failing) // the load has seen the failure
	srv.Restart(t)
	// Stale pooled connections fail once each; then the same client
	// reconnects and EVALSHA reloads the flushed script cache.
	recovered := false
	for range 500 {
		_, err1 := viaStore.Validate(ctx, tokRedis, req)
		_, err2 := viaLimiter.Validate(ctx, tokMem, req)
		if err1 == nil && err2 == nil {
			recovered = true
			break
		}
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, apitoken.ErrStoreUnavailable) {
				t.Fatalf("Validate after the restart error = %v, want nil or ErrStoreUnavailable", err)
			}
		}
	}
	if !recovered {
		t.Fatalf("Validate still failing after 500 tries with the server back")
	}
	close(stop)
	wg.Wait()
	check("after the restart", nil)
	t.Logf("under load: %d validations succeeded, %d failed closed", ok.Load(), failed.Load())
}
