package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// singleClient returns a client of srv, closed when t ends.
func singleClient(t testing.TB, srv *testservers.RedisServer) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// clusterClient returns a Cluster client of c, closed when t ends.
func clusterClient(t testing.TB, c *testservers.RedisCluster) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// newStore returns a Store on client in a namespace of its own, closed
// when t ends.
func newStore(t testing.TB, client redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	opts = append([]redisstore.Option{redisstore.WithKeyPrefix(storetest.Namespace(t))}, opts...)
	s, err := redisstore.New(context.Background(), client, opts...)
	if err != nil {
		t.Fatalf("redisstore.New error = %v, want nil", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) }) // t.Context() is already cancelled here
	return s
}

// countedClients are a single server's client and a Cluster's, each with c
// counting the round trips that reach a server, for tests that run on both.
var countedClients = []struct {
	name   string
	client func(t *testing.T, c *counter) redis.UniversalClient
}{
	{"Single", func(t *testing.T, c *counter) redis.UniversalClient {
		cl := singleClient(t, testservers.StartRedis(t))
		cl.AddHook(c)
		return cl
	}},
	{"Cluster", func(t *testing.T, c *counter) redis.UniversalClient {
		cl := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: testservers.StartRedisCluster(t).Addrs,
			NewClient: func(opt *redis.Options) *redis.Client {
				node := redis.NewClient(opt)
				node.AddHook(c) // count what reaches a server
				return node
			},
		})
		t.Cleanup(func() { cl.Close() })
		return cl
	}},
}
