package sqlstore_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/apitoken/apitoken/storetest"
)

// childEnv, when set, makes the test binary a crash child instead of a
// test run: "sqlite <path>" or "postgres <schema> <dsn>".
const childEnv = "APITOKEN_SQLSTORE_CRASH_CHILD"

// crashChild creates and revokes tokens until it is killed, and writes a
// line to stdout after each operation returned: "created <id>" or
// "revoked <id>". It returns only on error.
func crashChild(mode string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	ctx := context.Background()
	dialect, rest, _ := strings.Cut(mode, " ")
	var db *sql.DB
	var s *sqlstore.Store
	var err error
	switch dialect {
	case "sqlite":
		if db, err = sqlite.OpenDB(ctx, rest); err == nil {
			s, err = sqlstore.New(db, sqlstore.SQLite)
		}
	case "postgres":
		schema, dsn, _ := strings.Cut(rest, " ")
		if db, err = postgres.OpenDB(ctx, dsn); err == nil {
			s, err = sqlstore.New(db, sqlstore.Postgres, sqlstore.WithSchema(schema))
		}
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return fail(err)
	}
	now := time.Now().UTC()
	for i := 0; ; i++ {
		tok := crashToken(now)
		if err := s.Create(ctx, tok, 0); err != nil {
			return fail(err)
		}
		// One write(2) per line: a line that reached the parent is an
		// acknowledged operation.
		os.Stdout.WriteString("created " + tok.ID + "\n")
		if i%2 == 1 {
			if err := s.Revoke(ctx, tok.ID, now); err != nil {
				return fail(err)
			}
			os.Stdout.WriteString("revoked " + tok.ID + "\n")
		}
	}
}

func crashToken(now time.Time) *apitoken.Token {
	var h apitoken.Hash
	rand.Read(h[:])
	return &apitoken.Token{
		ID: uuid.Must(uuid.NewV7()).String(), Kind: apitoken.KindUser, OwnerID: "user_1", Name: "crash",
		Roles: []string{"reader"}, Hash: h, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
}

// TestCrash kills a child process that creates and revokes tokens with
// SIGKILL at random points, 20 times per dialect, and checks after each
// kill that the database opens cleanly, every Create the child saw return
// is stored, and every Revoke it saw return is still in effect.
func TestCrash(t *testing.T) {
	const rounds = 20
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "crash.db")
		db, err := sqlite.OpenDB(t.Context(), path)
		if err != nil {
			t.Fatalf("sqlite.OpenDB: %v", err)
		}
		if _, err := newStoreNoCleanup(t, db, sqlstore.SQLite); err != nil {
			t.Fatal(err)
		}
		db.Close()
		acks := 0
		defer func() { t.Logf("%d rounds, %d acknowledged operations", rounds, acks) }()
		for round := range rounds {
			created, revoked := runCrashChild(t, "sqlite "+path)
			acks += len(created) + len(revoked)
			// Reopen, as a restarted program would, and check the file.
			db, err := sqlite.OpenDB(t.Context(), path)
			if err != nil {
				t.Fatalf("round %d: sqlite.OpenDB after SIGKILL: %v", round, err)
			}
			var check string
			if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Fatalf("round %d: PRAGMA integrity_check after SIGKILL = %q, %v; want ok", round, check, err)
			}
			s, err := newStoreNoCleanup(t, db, sqlstore.SQLite)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			checkAcknowledged(t, round, s, created, revoked)
			s.Close(t.Context())
			db.Close()
		}
	})
	t.Run("Postgres", func(t *testing.T) {
		db, dsn := openPostgres(t)
		schema := storetest.Namespace(t)
		s := newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(schema))
		acks := 0
		defer func() { t.Logf("%d rounds, %d acknowledged operations", rounds, acks) }()
		for round := range rounds {
			created, revoked := runCrashChild(t, "postgres "+schema+" "+dsn)
			acks += len(created) + len(revoked)
			checkAcknowledged(t, round, s, created, revoked)
		}
	})
}

// newStoreNoCleanup returns a migrated store the caller closes.
func newStoreNoCleanup(t *testing.T, db *sql.DB, d sqlstore.Dialect) (*sqlstore.Store, error) {
	s, err := sqlstore.New(db, d)
	if err != nil {
		return nil, fmt.Errorf("New: %w", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		return nil, fmt.Errorf("Migrate: %w", err)
	}
	return s, nil
}

// runCrashChild starts a crash child, kills it with SIGKILL after a random
// number (0 to 24) of acknowledged operations, and returns the IDs it
// acknowledged creating and revoking, including those it wrote between the
// decision and the kill.
func runCrashChild(t *testing.T, mode string) (created, revoked []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crash child: %v", err)
	}
	killAfter := mrand.IntN(25)
	lines := bufio.NewScanner(out)
	killed := false
	kill := func() {
		if !killed {
			cmd.Process.Kill() // SIGKILL
			killed = true
		}
	}
	if killAfter == 0 {
		kill()
	}
	n := 0
	for lines.Scan() {
		op, id, _ := strings.Cut(lines.Text(), " ")
		switch op {
		case "created":
			created = append(created, id)
		case "revoked":
			revoked = append(revoked, id)
		default:
			t.Errorf("crash child wrote %q", lines.Text())
		}
		if n++; n == killAfter {
			kill()
		}
	}
	kill()
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("crash child ended with %v, want killed by SIGKILL", err)
	}
	return created, revoked
}

// checkAcknowledged checks that every created ID is stored and every
// revoked ID is revoked.
func checkAcknowledged(t *testing.T, round int, s *sqlstore.Store, created, revoked []string) {
	t.Helper()
	for _, id := range created {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Errorf("round %d: Get(token whose Create returned before SIGKILL) error = %v, want nil", round, err)
		}
	}
	for _, id := range revoked {
		tok, err := s.Get(t.Context(), id)
		if err != nil || !tok.Revoked() {
			t.Errorf("round %d: Get(token whose Revoke returned before SIGKILL) = revoked %v, error %v; want revoked", round, err == nil && tok.Revoked(), err)
		}
	}
}
