package redisstore_test

import (
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/storefaults"
	"github.com/apitoken/apitoken/internal/testservers"
)

// TestReplicaFlushesOutOfOrder runs four replica Validators, each on its
// own clock, on one store (a single server and a Cluster), and checks that
// a token's stored last-used time never moves backwards when their flushes
// land out of order: first one after another, newest first; then 20 rounds
// of uses at random instants (over a flush interval apart) flushed at
// once, while a reader checks that no read sees an earlier time than the
// read before it.
func TestReplicaFlushesOutOfOrder(t *testing.T) {
	pol := apitoken.Policy{Prefix: "lu"}
	t.Run("Single", func(t *testing.T) {
		storefaults.ReplicaFlushesOutOfOrder(t, faultFixture(newStore(t, singleClient(t, testservers.StartRedis(t))), pol))
	})
	t.Run("Cluster", func(t *testing.T) {
		storefaults.ReplicaFlushesOutOfOrder(t, faultFixture(newStore(t, clusterClient(t, testservers.StartRedisCluster(t))), pol))
	})
}

// faultFixture is store s under pol for the helpers of package
// storefaults: it issues tokens with issue and builds Validators with
// newValidator, and the tokens may make req.
func faultFixture(s apitoken.Store, pol apitoken.Policy) storefaults.Fixture {
	return storefaults.Fixture{
		Store:  s,
		Policy: pol,
		Issue:  func(t testing.TB) (string, *apitoken.Token) { return issue(t, s, pol, apitoken.Spec{}) },
		NewValidator: func(t testing.TB, opts ...apitoken.ValidatorOption) *apitoken.Validator {
			return newValidator(t, s, pol, opts...)
		},
		Request: req,
	}
}
