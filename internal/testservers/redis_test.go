package testservers_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// TestRedisWithAppendOnly: a server started with an append-only file keeps
// its data across Kill (SIGKILL) and Restart, under each fsync policy.
func TestRedisWithAppendOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, fsync, want string }{
		{"always", "always", "always"},
		{"everysec", "everysec", "everysec"},
		{"no", "no", "no"},
		{"default", "", "everysec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testservers.StartRedisWith(t, testservers.RedisConfig{AppendOnly: true, AppendFsync: tc.fsync})
			assert.Equal(t, "yes", configGet(t, s.Addr, "appendonly"), "CONFIG GET appendonly")
			assert.Equal(t, tc.want, configGet(t, s.Addr, "appendfsync"), "CONFIG GET appendfsync")
			assert.Equal(t, "", configGet(t, s.Addr, "save"), "CONFIG GET save")
			got, err := testservers.RedisCommand(s.Addr, "SET", "k", "v")
			require.NoError(t, err, "SET")
			require.Equal(t, "OK", got, "SET")
			s.Kill(t)
			s.Restart(t)
			got, err = testservers.RedisCommand(s.Addr, "GET", "k")
			require.NoError(t, err, "GET k after Kill and Restart")
			assert.Equal(t, "v", got, "GET k after Kill and Restart")
		})
	}
}

func TestRedisConfigInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    testservers.RedisConfig
	}{
		{"fsync without append-only file", testservers.RedisConfig{AppendFsync: "always"}},
		{"unknown fsync policy", testservers.RedisConfig{AppendOnly: true, AppendFsync: "sometimes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ft := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testservers.StartRedisWith(ft, tc.c)
			}()
			<-done
			assert.True(t, ft.failed, "StartRedisWith(%+v) did not fail the test", tc.c)
		})
	}
}

// fatalRecorder records Fatalf instead of failing the real test; Fatalf
// ends the calling goroutine, as testing's does.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}

// configGet returns the value of one CONFIG GET parameter (RedisCommand
// reads no array replies).
func configGet(t *testing.T, addr, name string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	got, err := c.ConfigGet(t.Context(), name).Result()
	require.NoError(t, err, "CONFIG GET %s", name)
	return got[name]
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
