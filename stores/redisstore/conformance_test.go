package redisstore_test

import (
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// The suite writes instants relative to a fixed date that may be in the
// past, so Redis's own expiry (a backstop for the Pruner) is turned off
// here: it would drop the suite's long-expired tokens before Prune sees
// them. TestRetention checks the backstop.

func TestConformance(t *testing.T) {
	client := singleClient(t, testservers.StartRedis(t))
	storetest.Run(t, func(t *testing.T) apitoken.Store {
		return newStore(t, client, redisstore.WithRetention(0))
	})
}

func TestConformanceCluster(t *testing.T) {
	client := clusterClient(t, testservers.StartRedisCluster(t))
	storetest.Run(t, func(t *testing.T) apitoken.Store {
		return newStore(t, client, redisstore.WithRetention(0))
	})
}
