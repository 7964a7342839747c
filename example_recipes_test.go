package apitoken_test

// The README's recipes. Each Example holds its recipe's snippet verbatim
// between the "README:" and "end of the README snippet" markers
// (readme_test.go checks it), with what makes it runnable around it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
	"github.com/apitoken/apitoken/stores/redisstore"
)

// An org token holds roles the policy defines and its own per-API access
// levels, optionally for some resources only.
func ExampleRole() {
	ctx := context.Background()
	store := memstore.New()

	// README: Org tokens with roles and per-API access
	policy := apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}},
			"operator": {Grants: apitoken.Grants{"devices": apitoken.AccessFull, "sites": apitoken.AccessRead}},
		},
	}
	iss, err := apitoken.NewIssuer(store, policy)
	v, err := apitoken.NewValidator(store, policy)
	secret, _, err := iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "deploy bot",
		Roles:     []string{"observer"},                            // read every API
		Grants:    apitoken.Grants{"deploys": apitoken.AccessFull}, // and write deploys
		Resources: []string{"site-a"},                              // only for site-a
		Lifetime:  apitoken.Months(3),
	})
	p, err := v.Validate(ctx, secret.Reveal(), apitoken.Request{
		Org: "org_1", API: "deploys", Access: apitoken.AccessFull, Resource: "site-a",
	})
	// end of the README snippet
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Access("deploys"), p.Access("billing"), p.HasRole("observer"))
	_, err = v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_1", API: "billing", Access: apitoken.AccessFull})
	fmt.Println(errors.Is(err, apitoken.ErrForbidden))
	_, err = v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_1", API: "deploys", Access: apitoken.AccessFull, Resource: "site-b"})
	fmt.Println(errors.Is(err, apitoken.ErrForbidden))
	_ = v.Close(ctx)
	// Output:
	// full read true
	// true
	// true
}

// hostUsers stands for the host's own user store: user → org → roles.
type hostUsers map[string]map[string][]string

func (u hostUsers) Member(_ context.Context, userID, org string) (apitoken.Membership, error) {
	roles, ok := u[userID][org]
	if !ok {
		return apitoken.Membership{}, apitoken.ErrNotFound // no such user, disabled, or not in org
	}
	return apitoken.Membership{Roles: roles}, nil
}

// A user token carries its user's current privileges, which the host's
// Directory reports on every validation.
func ExampleDirectory() {
	ctx := context.Background()
	store := memstore.New()
	policy := apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"operator": {Grants: apitoken.Grants{"devices": apitoken.AccessFull}},
		},
	}
	users := hostUsers{"user_7": {"org_1": {"operator"}, "org_2": {"observer"}}}
	iss, _ := apitoken.NewIssuer(store, policy)

	// README: User tokens through a Directory
	v, err := apitoken.NewValidator(store, policy, apitoken.WithUsers(users)) // users: the host's apitoken.Directory
	secret, _, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_7", Name: "laptop"})
	p, err := v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessFull})
	// p.Roles are user_7's roles in org_1 now; once the Directory drops them, the token stops working there
	// end of the README snippet
	fmt.Println(p.UserID, p.OrgID, p.Roles, err)

	_, err = v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_2", API: "devices", Access: apitoken.AccessFull})
	fmt.Println(errors.Is(err, apitoken.ErrForbidden)) // only an observer in org_2
	delete(users["user_7"], "org_1")
	_, err = v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead})
	fmt.Println(errors.Is(err, apitoken.ErrForbidden))
	_ = v.Close(ctx)
	// Output:
	// user_7 org_1 [operator] <nil>
	// true
	// true
}

// A token that works only from the office, on a server behind load
// balancers: the middleware believes the balancers' X-Forwarded-For, and
// only theirs.
func ExamplePolicy_ipFilters() {
	ctx := context.Background()
	store := memstore.New()
	devices := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

	// README: IP filters behind a proxy
	policy := apitoken.Policy{
		Prefix:    "acme",
		IPFilters: map[string][]string{"office": {"203.0.113.0/24", "2001:db8::/32"}},
	}
	iss, err := apitoken.NewIssuer(store, policy)
	secret, _, err := iss.Issue(ctx, apitoken.Spec{
		Kind: apitoken.KindOrg, OrgID: "org_1", Name: "office ci",
		Grants: apitoken.Grants{"devices": apitoken.AccessRead}, IPFilter: "office",
	})
	v, err := apitoken.NewValidator(store, policy, apitoken.WithSingleTenant("org_1"))
	auth, err := httpauth.New(v, // the load balancers are in 10.0.0.0/8 and append X-Forwarded-For
		httpauth.WithTrustedProxies("X-Forwarded-For", netip.MustParsePrefix("10.0.0.0/8")))
	mux := http.NewServeMux()
	mux.Handle("GET /devices/", auth.Wrap(devices))
	// end of the README snippet
	if err != nil {
		panic(err)
	}

	call := func(peer, forwardedFor string) {
		r := httptest.NewRequest("GET", "/devices/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", forwardedFor)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(peer, forwardedFor, w.Code)
	}
	call("10.0.0.7:50000", "203.0.113.9")     // from the office, through a balancer
	call("10.0.0.7:50000", "198.51.100.7")    // from elsewhere, through a balancer
	call("198.51.100.7:50000", "203.0.113.9") // from elsewhere, claiming the office
	_ = v.Close(ctx)
	// Output:
	// 10.0.0.7:50000 203.0.113.9 200
	// 10.0.0.7:50000 198.51.100.7 403
	// 198.51.100.7:50000 203.0.113.9 403
}

// Replicas that share one Redis (or Redis Cluster) share tokens,
// revocations and rate-limit budgets. A Redis server is needed, so this
// example is compiled but not run.
func Example_redis() {
	ctx := context.Background()
	policy := apitoken.Policy{Prefix: "acme", OrgRateLimit: apitoken.Limit{Rate: apitoken.Per(100, time.Minute), Burst: 20}}

	// README: Redis shared by replicas
	client := redis.NewClient(&redis.Options{Addr: "redis:6379"}) // or redis.NewClusterClient
	store, err := redisstore.New(ctx, client, redisstore.WithKeyPrefix("myapp"))
	if err != nil {
		log.Fatal(err)
	}
	// The store is its own limiter: lookup and rate limit in one round trip,
	// one budget per token or user across every replica.
	v, err := apitoken.NewValidator(store, policy, apitoken.WithLimiter(store))
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close(ctx) // writes the last pending last-used times
	// end of the README snippet
}

// Pruning removes tokens unused for the idle timeout and tokens ended
// (expired or revoked) longer ago than the retention.
func ExamplePruner() {
	ctx := context.Background()
	now := time.Now().Add(-40 * 24 * time.Hour) // the Issuer and the Validator run 40 days in the past
	clock := func() time.Time { return now }
	store := memstore.New()
	policy := apitoken.Policy{Prefix: "acme", IdleTimeout: 30 * 24 * time.Hour}
	iss, _ := apitoken.NewIssuer(store, policy, apitoken.WithClock(clock))
	v, _ := apitoken.NewValidator(store, policy, apitoken.WithClock(clock), apitoken.WithSingleTenant("org_1"))
	used, _, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "used"})
	_, _, _ = iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "forgotten"})
	now = now.Add(20 * 24 * time.Hour)
	_, _ = v.Validate(ctx, used.Reveal(), apitoken.Request{})
	// By the real clock the Pruner reads, "forgotten" is unused for 40 days, "used" for 20.

	// README: Pruning
	pr, err := apitoken.NewPruner(store, policy, apitoken.WithFlushFirst(v))
	stats, err := pr.Prune(ctx) // one pass; in a server, go pr.Run(ctx, time.Hour) prunes hourly until ctx ends
	// end of the README snippet
	fmt.Printf("%+v %v\n", stats, err)
	for t, err := range iss.All(ctx, apitoken.Filter{}) {
		fmt.Println(t.Name, err)
	}
	_ = v.Close(ctx)
	// Output:
	// {Idle:1 Expired:0} <nil>
	// used <nil>
}

// Rotating the hash key: the new key first, the old ones after it until no
// token is found under them.
func ExampleWithHashKeys() {
	ctx := context.Background()
	store := memstore.New()
	policy := apitoken.Policy{Prefix: "acme"}
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32) // 32 random bytes each, from the host's secret store
	before, _ := apitoken.NewIssuer(store, policy, apitoken.WithHashKeys(oldKey))
	secret, _, _ := before.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})
	presented, req := secret.Reveal(), apitoken.Request{Org: "org_1"}

	// README: Hash-key rotation
	iss, err := apitoken.NewIssuer(store, policy, apitoken.WithHashKeys(newKey, oldKey))
	v, err := apitoken.NewValidator(store, policy, apitoken.WithHashKeys(newKey, oldKey))
	p, err := v.Validate(ctx, presented, req)
	if err == nil && p.KeyOutdated {
		err = iss.Rehash(ctx, presented) // found under oldKey: store it under newKey
	}
	// end of the README snippet
	fmt.Println(p.KeyOutdated, err)
	p, err = v.Validate(ctx, presented, req)
	fmt.Println(p.KeyOutdated, err)
	after, _ := apitoken.NewValidator(store, policy, apitoken.WithHashKeys(newKey)) // oldKey dropped
	_, err = after.Validate(ctx, presented, req)
	fmt.Println(err)
	_ = v.Close(ctx)
	_ = after.Close(ctx)
	// Output:
	// true <nil>
	// false <nil>
	// <nil>
}

// A recoverable token can be shown to its owner again: the Issuer also
// stores the secret encrypted under a seal key.
func ExampleIssuer_Recover() {
	ctx := context.Background()
	store := memstore.New()
	policy := apitoken.Policy{Prefix: "acme"}
	sealKey := bytes.Repeat([]byte{3}, 32) // 32 random bytes, from the host's secret store
	spec := apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "webhook signer"}
	audit := func(_ context.Context, e apitoken.Event) { fmt.Println("audit:", e.Type) } // or apitoken.SlogAudit(logger)

	// README: Recoverable tokens
	iss, err := apitoken.NewIssuer(store, policy, apitoken.WithSealKeys(sealKey),
		apitoken.WithAudit(audit)) // every key shown again leaves a trace
	secret, tok, err := iss.Issue(ctx, spec)
	again, err := iss.Recover(ctx, tok.ID) // the same plaintext, for its owner to see again
	// end of the README snippet
	fmt.Println(err, again.Reveal() == secret.Reveal())

	plain, _ := apitoken.NewIssuer(store, policy) // no seal keys: hash only
	_, tok, _ = plain.Issue(ctx, spec)
	_, err = iss.Recover(ctx, tok.ID)
	fmt.Println(errors.Is(err, apitoken.ErrNotRecoverable))
	// Output:
	// audit: created
	// audit: recovered
	// <nil> true
	// true
}
