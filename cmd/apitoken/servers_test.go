package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The main module's internal/testservers cannot be imported from this
// module, so these are its minimum: a throwaway PostgreSQL cluster and a
// redis-server on loopback, skipped when the binaries are missing (failed
// under APITOKEN_REQUIRE_SERVERS=1, as there).

func unavailable(t *testing.T, server, why string) {
	t.Helper()
	msg := server + " unavailable: " + why
	if os.Getenv("APITOKEN_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg + " (APITOKEN_REQUIRE_SERVERS=1)")
	}
	t.Skip("SKIPPING: " + msg + "; install it or run scripts/test")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPostgres starts a PostgreSQL cluster for t and returns a URL of its
// database "postgres" (trust authentication, no TLS).
func startPostgres(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { // newest version first
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		return int(vb - va)
	})
	bin := ""
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			bin = d
			break
		}
	}
	if bin == "" {
		unavailable(t, "PostgreSQL", "no initdb under /usr/lib/postgresql/*/bin")
	}
	var cred *syscall.Credential
	root, err := os.MkdirTemp("", "apitoken-cli-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "PostgreSQL", "running as root without a postgres user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		require.NoError(t, os.Chown(root, uid, gid))
	}
	data := filepath.Join(root, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)

	port := freePort(t)
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", root,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	srv.Env = append(os.Environ(), "LC_ALL=C")
	require.NoError(t, srv.Start())
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGQUIT); <-done })
	// postmaster.pid's 8th line says "ready" once it accepts connections.
	for deadline := time.Now().Add(60 * time.Second); ; {
		b, _ := os.ReadFile(filepath.Join(data, "postmaster.pid"))
		if lines := strings.Split(string(b), "\n"); len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready" {
			break
		}
		select {
		case <-done:
			t.Fatal("postgres exited during start-up")
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "postgres not ready after 60s")
	}
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
}

// startRedis starts a redis-server for t and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "Redis", "no redis-server on PATH")
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	_, port, _ := net.SplitHostPort(addr)
	srv := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(30 * time.Second); c.Ping(context.Background()).Err() != nil; {
		require.True(t, time.Now().Before(deadline), "redis-server not ready after 30s")
		<-time.After(20 * time.Millisecond) // a bounded readiness poll, as internal/testservers does
	}
	return addr
}
