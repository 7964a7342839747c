package testservers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PG is a throwaway PostgreSQL cluster: initdb'd in a temporary directory,
// listening on a free 127.0.0.1 port (and a unix socket in that directory),
// with trust authentication for the user "postgres" and durability turned
// off (fsync=off) for speed. As root, the server runs as the system user
// postgres. The server process gets SIGQUIT if the test binary dies, so no
// server outlives its tests. A PG is safe for concurrent use.
type PG struct {
	bin  string // directory of initdb and postgres
	root string // temporary directory: data/, sock/, postgres.log
	cred *syscall.Credential

	mu   sync.Mutex
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

var shared struct {
	mu  sync.Mutex
	pg  *PG
	err error
}

// Postgres returns the test binary's shared PostgreSQL cluster, starting it
// on first use. Tests share it: give each its own database
// ([PG.CreateDatabase]) or schema. The package's TestMain must call
// [StopPostgres] after m.Run. Without the PostgreSQL binaries the test is
// skipped, or fails under APITOKEN_REQUIRE_SERVERS=1 (see [Unavailable]).
// Do not stop the shared cluster in a test; use [NewPostgres] for that.
func Postgres(t testing.TB) *PG {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.pg == nil && shared.err == nil {
		shared.pg, shared.err = startPostgres()
	}
	if shared.err != nil {
		failStart(t, shared.err)
	}
	return shared.pg
}

// StopPostgres stops the shared cluster, if one was started, and deletes
// its files. Call it from TestMain after m.Run; a later [Postgres] starts a
// new cluster.
func StopPostgres() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.pg != nil {
		shared.pg.remove()
	}
	shared.pg, shared.err = nil, nil
}

// NewPostgres starts a cluster of the test's own, which the test may stop
// and start again ([PG.Stop], [PG.Start]); it is removed when the test ends.
// It costs an initdb (a second or so), so prefer [Postgres] where sharing
// is fine.
func NewPostgres(t testing.TB) *PG {
	t.Helper()
	pg, err := startPostgres()
	if err != nil {
		failStart(t, err)
	}
	t.Cleanup(pg.remove)
	return pg
}

// errUnavailable marks a start failure that means "cannot run here".
type errUnavailable struct{ why string }

func (e errUnavailable) Error() string { return e.why }

func failStart(t testing.TB, err error) {
	t.Helper()
	var u errUnavailable
	if errors.As(err, &u) {
		Unavailable(t, "PostgreSQL", u.why)
	}
	t.Fatalf("testservers: start PostgreSQL: %v", err)
}

// postgresBin returns the newest /usr/lib/postgresql/<version>/bin that
// holds initdb and postgres.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errUnavailable{"no initdb and postgres under /usr/lib/postgresql/*/bin (apt-get install postgresql, or run scripts/test)"}
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// startPostgres creates and starts a new cluster.
func startPostgres() (*PG, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	p := &PG{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errUnavailable{"running as root, and there is no postgres user to run the server as"}
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if p.root, err = os.MkdirTemp("", "apitoken-pg-"); err != nil {
		return nil, err
	}
	if err := p.setup(); err != nil {
		os.RemoveAll(p.root)
		return nil, err
	}
	return p, nil
}

func (p *PG) setup() error {
	if err := os.Mkdir(filepath.Join(p.root, "sock"), 0o700); err != nil {
		return err
	}
	if p.cred != nil {
		for _, d := range []string{p.root, filepath.Join(p.root, "sock")} {
			if err := os.Chown(d, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				return err
			}
		}
	}
	initdb := exec.Command(filepath.Join(p.bin, "initdb"), "-D", filepath.Join(p.root, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGKILL}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A port taken between FreePort and the bind gets another try.
	var err error
	for range 3 {
		if p.port, err = freePort(); err != nil {
			return err
		}
		if err = p.Start(); err == nil {
			return nil
		}
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the server (again, after [PG.Stop]) on the same port and
// data, and returns once it accepts connections. Starting a running server
// does nothing.
func (p *PG) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(p.root, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	data := filepath.Join(p.root, "data")
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(p.port), "-k", filepath.Join(p.root, "sock"),
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: the server shuts down at once (SIGQUIT) if this process
	// dies; Setpgid keeps a terminal's ^C from reaching it directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	// Poll postmaster.pid until it says "ready" for this process: a short,
	// bounded readiness loop.
	pidFile := filepath.Join(data, "postmaster.pid")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) > 7 && strings.TrimSpace(lines[0]) == strconv.Itoa(cmd.Process.Pid) && strings.TrimSpace(lines[7]) == "ready" {
				p.cmd, p.done = cmd, done
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited during start-up:\n%s", p.logTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("postgres not ready after 60s:\n%s", p.logTail())
		}
	}
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and
// waits for it to exit. Stopping a stopped server does nothing.
func (p *PG) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("postgres did not stop within 30s; killed")
	}
}

// remove stops the server at once and deletes its files.
func (p *PG) remove() {
	p.mu.Lock()
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
		<-p.done
		p.cmd, p.done = nil, nil
	}
	p.mu.Unlock()
	os.RemoveAll(p.root)
}

func (p *PG) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.root, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// Port returns the server's TCP port on 127.0.0.1.
func (p *PG) Port() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.port
}

// DSN returns a connection string for database dbname as the superuser
// "postgres" over TCP loopback (no password: trust authentication).
func (p *PG) DSN(dbname string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable connect_timeout=10", p.Port(), dbname)
}

// CreateDatabase creates a new, empty database with a random name, drops it
// when the test ends, and returns its DSN.
func (p *PG) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := "t_" + strings.ToLower(rand.Text()[:16])
	if err := p.admin(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testservers: create database: %v", err)
	}
	t.Cleanup(func() {
		// The server may be stopped by now (a fault test); a dropped
		// cluster takes the database with it.
		if err := p.admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testservers: drop database %s: %v", name, err)
		}
	})
	return p.DSN(name)
}

// admin runs one statement in the "postgres" database.
func (p *PG) admin(ctx context.Context, stmt string) error {
	db, err := sql.Open("pgx", p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
