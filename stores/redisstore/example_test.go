package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
)

// A Redis server is needed, so this example is compiled but not run.
func ExampleNew() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer client.Close()

	store, err := redisstore.New(ctx, client, redisstore.WithKeyPrefix("myapp"))
	if errors.Is(err, redisstore.ErrEvictionPolicy) {
		log.Fatal("set maxmemory-policy noeviction: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	policy := apitoken.Policy{Prefix: "acme", OrgRateLimit: apitoken.Limit{Rate: apitoken.Per(100, time.Minute), Burst: 20}}
	iss, _ := apitoken.NewIssuer(store, policy)
	// The store is its own limiter: lookup and rate limit in one round trip.
	v, _ := apitoken.NewValidator(store, policy, apitoken.WithLimiter(store))
	defer v.Close(ctx) // writes the last pending last-used times

	secret, _, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci",
		Grants: apitoken.Grants{"devices": apitoken.AccessRead}})
	if err != nil {
		log.Fatal(err)
	}
	p, err := v.Validate(ctx, secret.Reveal(), apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead})
	fmt.Println(p.OrgID, err)
}

// A Limiter on its own, for tokens kept in another store or a host's own
// limits (such as logins charged to a user's budget).
func ExampleNewLimiter() {
	ctx := context.Background()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}})
	defer client.Close()

	lim, err := redisstore.NewLimiter(ctx, client, redisstore.WithKeyPrefix("myapp"))
	if err != nil {
		log.Fatal(err)
	}
	d, err := lim.Allow(ctx, apitoken.UserKey("user_7"), apitoken.Limit{Rate: apitoken.Per(10, time.Minute), Burst: 5}, time.Now())
	if err != nil {
		log.Fatal(err) // fail closed
	}
	if !d.Allowed {
		fmt.Println("retry after", d.RetryAfter.Round(time.Second))
	}
}

// In a test, the clock the Redis limiter charges budgets on (server TIME,
// which apitoken.WithClock does not move) moves with WithTimeOffset: a
// token denied with a retry delay is allowed again once the offset has
// advanced by it.
func ExampleWithTimeOffset() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer client.Close()

	var offset atomic.Int64 // a time.Duration the test advances
	lim, err := redisstore.NewLimiter(ctx, client, redisstore.WithKeyPrefix("test"),
		redisstore.WithTimeOffset(func() time.Duration { return time.Duration(offset.Load()) }))
	if err != nil {
		log.Fatal(err)
	}
	key, hourly := apitoken.UserKey("user_7"), apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}
	lim.Allow(ctx, key, hourly, time.Now())
	d, _ := lim.Allow(ctx, key, hourly, time.Now()) // denied: retry in about an hour
	offset.Add(int64(d.RetryAfter))
	d, _ = lim.Allow(ctx, key, hourly, time.Now()) // allowed, with no sleep
	fmt.Println(d.Allowed)
}
