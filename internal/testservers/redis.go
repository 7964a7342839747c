package testservers

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisServer is a throwaway redis-server on a free loopback port with its
// own temporary directory and maxmemory-policy noeviction: without
// persistence (no RDB snapshots, no AOF) from [StartRedis], with an
// append-only file from [StartRedisWith]. It is stopped when the test that
// started it ends. Its methods are safe for concurrent use.
type RedisServer struct {
	// Addr is the server's "127.0.0.1:port", the same across restarts.
	Addr string

	bin  string
	args []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// redisReady bounds how long a server may take to answer PING, and a
// cluster to reach cluster_state:ok.
const redisReady = 30 * time.Second

// StartRedis starts a redis-server for t and returns it once it answers
// PING. A missing redis-server binary skips t (see [Unavailable]); a server
// that does not start fails it.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	return startRedis(t, t.TempDir(), nil)
}

// RedisConfig is what [StartRedisWith] changes from [StartRedis]'s server.
// The zero value changes nothing: no persistence.
type RedisConfig struct {
	// AppendOnly turns the append-only file on (appendonly yes), in the
	// server's temporary directory, which [RedisServer.Kill] and
	// [RedisServer.Restart] keep: the restarted server loads the file and
	// comes back with every write it holds. RDB snapshots stay off, so the
	// file is the only persistence.
	AppendOnly bool
	// AppendFsync is the appendfsync policy, "always", "everysec" or "no"
	// (see Redis's redis.conf); empty is Redis's default, everysec. It
	// needs AppendOnly.
	AppendFsync string
}

// args returns the redis-server arguments for c, which override the
// defaults that come before them, or an error for an invalid c.
func (c RedisConfig) args() ([]string, error) {
	switch c.AppendFsync {
	case "", "always", "everysec", "no":
	default:
		return nil, fmt.Errorf("AppendFsync %q: want always, everysec, no or empty", c.AppendFsync)
	}
	if !c.AppendOnly {
		if c.AppendFsync != "" {
			return nil, fmt.Errorf("AppendFsync %q without AppendOnly", c.AppendFsync)
		}
		return nil, nil
	}
	return []string{"--appendonly", "yes", "--appendfsync", cmp.Or(c.AppendFsync, "everysec")}, nil
}

// StartRedisWith starts a redis-server configured by c for t, as
// [StartRedis] does. With c.AppendOnly, a write the server acknowledged
// survives [RedisServer.Kill] and [RedisServer.Restart] as far as
// c.AppendFsync promises. An invalid c fails t.
func StartRedisWith(t testing.TB, c RedisConfig) *RedisServer {
	t.Helper()
	extra, err := c.args()
	if err != nil {
		t.Fatalf("testservers: StartRedisWith: %v", err)
	}
	return startRedis(t, t.TempDir(), extra)
}

// startRedis starts redis-server in dir with extra arguments; a port
// taken between FreePort and the bind is retried on another port. extra
// may hold "{port}" and "{busport}", replaced by the ports chosen.
func startRedis(t testing.TB, dir string, extra []string) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(t, "redis-server", "redis-server not found in PATH")
	}
	var last error
	for range 5 {
		port, bus := FreePort(t), FreePort(t)
		s := &RedisServer{
			Addr: "127.0.0.1:" + strconv.Itoa(port),
			bin:  bin,
			log:  filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log"),
		}
		s.args = []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
			"--dir", dir, "--logfile", s.log, "--daemonize", "no",
		}
		for _, a := range extra {
			a = strings.ReplaceAll(a, "{port}", strconv.Itoa(port))
			s.args = append(s.args, strings.ReplaceAll(a, "{busport}", strconv.Itoa(bus)))
		}
		if last = s.start(); last == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("testservers: redis-server did not start: %v", last)
	return nil
}

// start runs the server and waits until it answers PING.
func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, s.args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(redisReady)
	for {
		reply, err := RedisCommand(s.Addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.Addr, tail(s.log))
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s not answering PING after %v: %v", s.Addr, redisReady, err)
		}
		time.Sleep(10 * time.Millisecond) // readiness poll, bounded by the deadline
	}
}

// Kill stops the server at once with SIGKILL, as a crash of the process
// would, and waits until it has exited. Its directory stays: without
// persistence ([StartRedis]) its data is lost; with an append-only file
// ([StartRedisWith]) what the server wrote to the file is kept. The
// operating system does not crash, so what was written but not yet
// fsynced is kept too. Killing a stopped server does nothing.
func (s *RedisServer) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a killed server again on the same address and directory,
// and returns once it answers PING: empty without persistence, with the
// append-only file loaded otherwise. Restarting a running server kills it
// first.
func (s *RedisServer) Restart(t testing.TB) {
	t.Helper()
	s.Kill(t)
	if err := s.start(); err != nil {
		t.Fatalf("testservers: restarting redis-server: %v", err)
	}
}

func (s *RedisServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// RedisCluster is a throwaway Redis Cluster of three primaries (no
// replicas) on loopback, every slot assigned. It is stopped when the test
// that started it ends.
type RedisCluster struct {
	// Addrs are the primaries' "127.0.0.1:port" addresses.
	Addrs []string
	// Nodes are the primaries.
	Nodes []*RedisServer
}

// StartRedisCluster starts three redis-server --cluster-enabled yes
// primaries, joins them with redis-cli --cluster create … --cluster-yes,
// and returns once every node reports cluster_state:ok and knows every
// slot. Missing redis-server or redis-cli binaries skip t (see
// [Unavailable]).
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Unavailable(t, "redis-cli", "redis-cli not found in PATH (needed to create a Redis Cluster)")
	}
	c := &RedisCluster{}
	for range 3 {
		dir := t.TempDir()
		n := startRedis(t, dir, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-{port}.conf"),
			"--cluster-port", "{busport}",
			"--cluster-node-timeout", "5000",
		})
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testservers: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(redisReady)
	for _, addr := range c.Addrs {
		for {
			info, err := RedisCommand(addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testservers: Redis Cluster node %s not ready after %v: %v\n%s", addr, redisReady, err, info)
			}
			time.Sleep(20 * time.Millisecond) // readiness poll, bounded by the deadline
		}
	}
	return c
}

// RedisCommand sends one command to the Redis server at addr on a new
// connection and returns its reply: a simple string, a bulk string, or an
// integer in decimal. An error reply is returned as an error. It is for
// readiness checks and test setup; tests use a real client for the rest.
func RedisCommand(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply type %q", line[:1])
}
