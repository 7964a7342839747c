package testservers_test

import (
	"strings"
	"testing"

	"github.com/apitoken/apitoken/internal/testservers"
)

func TestRedisKillRestart(t *testing.T) {
	t.Parallel()
	s := testservers.StartRedis(t)
	if got, err := testservers.RedisCommand(s.Addr, "SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK, nil", got, err)
	}
	if got, err := testservers.RedisCommand(s.Addr, "CONFIG", "GET", "maxmemory-policy"); err == nil {
		t.Logf("CONFIG GET maxmemory-policy: %q", got)
	}
	s.Kill(t)
	if _, err := testservers.RedisCommand(s.Addr, "PING"); err == nil {
		t.Fatalf("PING after Kill succeeded, want an error")
	}
	s.Restart(t)
	if got, err := testservers.RedisCommand(s.Addr, "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Restart = %q, %v; want PONG, nil", got, err)
	}
	// No persistence: the restarted server is empty.
	if got, err := testservers.RedisCommand(s.Addr, "EXISTS", "k"); err != nil || got != "0" {
		t.Errorf("EXISTS k after Restart = %q, %v; want 0, nil", got, err)
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := testservers.StartRedisCluster(t)
	if len(c.Addrs) != 3 {
		t.Fatalf("StartRedisCluster: %d primaries, want 3", len(c.Addrs))
	}
	for _, addr := range c.Addrs {
		info, err := testservers.RedisCommand(addr, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_size:3") {
			t.Errorf("CLUSTER INFO on %s = %q, %v; want cluster_state:ok, cluster_size:3", addr, info, err)
		}
	}
}
