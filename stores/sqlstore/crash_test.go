package sqlstore_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/apitoken/apitoken/storetest"
)

// childEnv, when set, makes the test binary a crash child instead of a
// test run: "sqlite <path>" or "postgres <schema> <dsn>".
const childEnv = "APITOKEN_SQLSTORE_CRASH_CHILD"

// crashChild creates, revokes and regenerates tokens until it is killed,
// and writes a line to stdout after each operation returned: "created
// <id>", "revoked <id>" or "regenerated <id> <old hash> <new hash>" (hex).
// It returns only on error. A mode starting "migrate " makes it a
// migrating child instead (see migrateChild).
func crashChild(mode string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	if rest, ok := strings.CutPrefix(mode, "migrate "); ok {
		return migrateChild(rest)
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
	iss, err := apitoken.NewIssuer(s, crashPolicy)
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
		switch i % 3 {
		case 1:
			if err := s.Revoke(ctx, tok.ID, now); err != nil {
				return fail(err)
			}
			os.Stdout.WriteString("revoked " + tok.ID + "\n")
		case 2:
			_, regen, err := iss.Regenerate(ctx, tok.ID, apitoken.NoExpiry) // no grace: the old secret stops at once
			if err != nil {
				return fail(err)
			}
			os.Stdout.WriteString("regenerated " + tok.ID + " " + hex.EncodeToString(tok.Hash[:]) + " " + hex.EncodeToString(regen.Hash[:]) + "\n")
		}
	}
}

// crashPolicy is the policy the crash child regenerates under.
var crashPolicy = apitoken.Policy{
	Prefix: "crash",
	Roles:  map[string]apitoken.Role{"reader": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}},
}

func crashToken(now time.Time) *apitoken.Token {
	var h apitoken.Hash
	rand.Read(h[:])
	return &apitoken.Token{
		ID: uuid.Must(uuid.NewV7()).String(), Kind: apitoken.KindUser, OwnerID: "user_1", Name: "crash",
		Roles: []string{"reader"}, Hash: h, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
}

// TestCrash kills a child process that creates, revokes and regenerates
// tokens with SIGKILL at random points, 50 times per dialect (about 1 s
// each), and checks after each kill that the database opens
// cleanly (PRAGMA integrity_check = ok on SQLite), every Create, Revoke and
// Regenerate the child saw return is in effect (a regenerated token is
// found by its new hash and no longer by its old one), and every token is
// wholly present or wholly absent (its row decodes, and its hash rows are
// exactly its Hash and PrevHash).
func TestCrash(t *testing.T) {
	const rounds = 50
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "crash.db")
		db, err := sqlite.OpenDB(t.Context(), path)
		require.NoError(t, err, "sqlite.OpenDB")
		_, err = newStoreNoCleanup(t, db, sqlstore.SQLite)
		require.NoError(t, err)
		db.Close()
		var total crashAcks
		start := time.Now()
		defer func() { t.Logf("%d rounds in %v: %s", rounds, time.Since(start).Round(time.Millisecond), total) }()
		for round := range rounds {
			acks := runCrashChild(t, "sqlite "+path)
			total.add(acks)
			// Reopen, as a restarted program would, and check the file.
			db, err := sqlite.OpenDB(t.Context(), path)
			require.NoError(t, err, "round %d: sqlite.OpenDB after SIGKILL", round)
			var check string
			err = db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check)
			require.NoError(t, err, "round %d: PRAGMA integrity_check after SIGKILL", round)
			require.Equal(t, "ok", check, "round %d: PRAGMA integrity_check after SIGKILL", round)
			s, err := newStoreNoCleanup(t, db, sqlstore.SQLite)
			require.NoError(t, err, "round %d", round)
			checkAcknowledged(t, round, s, acks)
			checkWhole(t, round, s, db, `"`+sqlstore.DefaultTablePrefix+`tokens"`, `"`+sqlstore.DefaultTablePrefix+`hashes"`)
			s.Close(t.Context())
			db.Close()
		}
	})
	t.Run("Postgres", func(t *testing.T) {
		db, dsn := openPostgres(t)
		schema := storetest.Namespace(t)
		s := newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(schema))
		var total crashAcks
		start := time.Now()
		defer func() { t.Logf("%d rounds in %v: %s", rounds, time.Since(start).Round(time.Millisecond), total) }()
		for round := range rounds {
			acks := runCrashChild(t, "postgres "+schema+" "+dsn)
			total.add(acks)
			checkAcknowledged(t, round, s, acks)
			checkWhole(t, round, s, db, schema+"."+sqlstore.DefaultTablePrefix+"tokens", schema+"."+sqlstore.DefaultTablePrefix+"hashes")
		}
	})
}

// crashAcks is what a crash child acknowledged before it was killed.
type crashAcks struct {
	created, revoked []string
	regenerated      []regeneration
}

// regeneration is one acknowledged Regenerate: the token's hash before
// and after.
type regeneration struct {
	id       string
	old, new apitoken.Hash
}

func (a *crashAcks) add(b crashAcks) {
	a.created = append(a.created, b.created...)
	a.revoked = append(a.revoked, b.revoked...)
	a.regenerated = append(a.regenerated, b.regenerated...)
}

func (a crashAcks) String() string {
	return fmt.Sprintf("%d acknowledged operations (%d creates, %d revokes, %d regenerates)",
		len(a.created)+len(a.revoked)+len(a.regenerated), len(a.created), len(a.revoked), len(a.regenerated))
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
// number (0 to 24) of acknowledged operations, and returns what it
// acknowledged, including what it wrote between the decision and the kill.
func runCrashChild(t *testing.T, mode string) crashAcks {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start crash child")
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
	var acks crashAcks
	n := 0
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 2 && f[0] == "created":
			acks.created = append(acks.created, f[1])
		case len(f) == 2 && f[0] == "revoked":
			acks.revoked = append(acks.revoked, f[1])
		case len(f) == 4 && f[0] == "regenerated":
			r := regeneration{id: f[1]}
			if !decodeHash(&r.old, f[2]) || !decodeHash(&r.new, f[3]) {
				t.Errorf("crash child wrote %q", lines.Text())
			}
			acks.regenerated = append(acks.regenerated, r)
		default:
			t.Errorf("crash child wrote %q", lines.Text())
		}
		if n++; n == killAfter {
			kill()
		}
	}
	kill()
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "crash child ended with %v, want killed by SIGKILL", err)
	return acks
}

func decodeHash(h *apitoken.Hash, s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && copy(h[:], b) == len(h) && len(b) == len(h)
}

// checkAcknowledged checks that every created ID is stored, every revoked
// ID is revoked, and every regenerated token is found by its new hash and
// not by its old one.
func checkAcknowledged(t *testing.T, round int, s *sqlstore.Store, acks crashAcks) {
	t.Helper()
	ctx := t.Context()
	for _, id := range acks.created {
		_, err := s.Get(ctx, id)
		assert.NoError(t, err, "round %d: Get(token whose Create returned before SIGKILL)", round)
	}
	for _, id := range acks.revoked {
		tok, err := s.Get(ctx, id)
		if assert.NoError(t, err, "round %d: Get(token whose Revoke returned before SIGKILL)", round) {
			assert.True(t, tok.Revoked(), "round %d: token whose Revoke returned before SIGKILL is not revoked", round)
		}
	}
	for _, r := range acks.regenerated {
		tok, err := s.Get(ctx, r.id)
		if !assert.NoError(t, err, "round %d: Get(token whose Regenerate returned before SIGKILL)", round) {
			continue
		}
		assert.Equal(t, r.new, tok.Hash, "round %d: Hash of a token whose Regenerate returned before SIGKILL", round)
		assert.True(t, tok.PrevHash.IsZero(), "round %d: PrevHash of a token regenerated without grace = %x, want none", round, tok.PrevHash[:])
		byNew, err := s.GetByHash(ctx, r.new)
		if assert.NoError(t, err, "round %d: GetByHash(new hash of a Regenerate that returned)", round) {
			assert.Equal(t, r.id, byNew.ID, "round %d: GetByHash(new hash of a Regenerate that returned)", round)
		}
		_, err = s.GetByHash(ctx, r.old)
		assert.ErrorIs(t, err, apitoken.ErrNotFound, "round %d: GetByHash(old hash of a Regenerate that returned, no grace)", round)
	}
}

// checkWhole checks that every token is wholly present or absent: List
// reads back as many tokens as the tokens table has rows, every token row
// has the hash row of its hash, and every hash row is its token's Hash or
// PrevHash.
func checkWhole(t *testing.T, round int, s *sqlstore.Store, db *sql.DB, tokens, hashes string) {
	t.Helper()
	ctx := t.Context()
	listed := 0
	f := apitoken.Filter{Limit: apitoken.MaxPageSize}
	for {
		p, err := s.List(ctx, f)
		require.NoError(t, err, "round %d: List after SIGKILL", round)
		listed += len(p.Tokens)
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	var rows, noHash, strayHash int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM "+tokens).Scan(&rows))
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM "+tokens+" t WHERE NOT EXISTS "+
		"(SELECT 1 FROM "+hashes+" h WHERE h.hash = t.hash AND h.token_id = t.id)").Scan(&noHash))
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM "+hashes+" h WHERE NOT EXISTS "+
		"(SELECT 1 FROM "+tokens+" t WHERE t.id = h.token_id AND (t.hash = h.hash OR t.prev_hash = h.hash))").Scan(&strayHash))
	assert.Equal(t, rows, listed, "round %d: tokens List reads back vs rows in the tokens table", round)
	assert.Zero(t, noHash, "round %d: token rows without the hash row of their hash", round)
	assert.Zero(t, strayHash, "round %d: hash rows that are not their token's Hash or PrevHash", round)
}
