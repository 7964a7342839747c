package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// bin is the apitoken binary TestMain builds.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apitoken-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "apitoken")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every store, client and database the tests open in this
		// process is closed, and every server they start has exited.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary with env (KEY=value) and args, in dir.
func cli(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "USER=tester"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run apitoken %v: %v", args, err)
	}
	return r
}

// ok runs the binary and requires exit code 0.
func ok(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	r := cli(t, dir, env, args...)
	require.Equal(t, 0, r.code, "apitoken %v: stderr: %s", args, r.stderr)
	return r
}

// listJSON parses list --json output: one object per line.
func listJSON(t *testing.T, out string) []map[string]any {
	t.Helper()
	var toks []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		toks = append(toks, m)
	}
	return toks
}

// lifecycle runs migrate → issue → list --json → show → revoke against the
// store at url, then validates the issued key with a Validator on open()'s
// store: it must fail with ErrRevoked.
func lifecycle(t *testing.T, url string, open func(t *testing.T) apitoken.Store) {
	dir := t.TempDir()
	env := []string{"APITOKEN_STORE=" + url}
	ok(t, dir, env, "migrate")
	ok(t, dir, env, "migrate") // idempotent

	r := ok(t, dir, env, "issue", "--kind", "org", "--org", "acme", "--name", "ci", "--grants", "devices=read",
		"--lifetime", "6 months", "--metadata", "team=infra")
	key := strings.TrimSuffix(r.stdout, "\n")
	_, err := apitoken.Parse(key)
	require.NoError(t, err, "stdout is the key alone")
	assert.NotContains(t, r.stderr, key, "the record on stderr never holds the key")
	assert.Contains(t, r.stderr, "status:")

	r = ok(t, dir, env, "list", "--json", "--owner", "org:acme")
	toks := listJSON(t, r.stdout)
	require.Len(t, toks, 1)
	tok := toks[0]
	assert.Equal(t, "ci", tok["name"])
	assert.Equal(t, "active", tok["status"])
	assert.Equal(t, "cli:tester", tok["created_by"])
	assert.Equal(t, map[string]any{"devices": "read"}, tok["grants"])
	assert.NotContains(t, r.stdout, key)
	id := tok["id"].(string)

	r = ok(t, dir, env, "list") // the table
	assert.Contains(t, r.stdout, "CREATED BY")
	assert.Contains(t, r.stdout, id)
	assert.Contains(t, r.stdout, tok["hint"].(string))

	r = ok(t, dir, env, "show", id, "--json")
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &shown))
	assert.Equal(t, id, shown["id"])

	// update: a list cleared with an empty value, a field set, the version checked.
	r = ok(t, dir, env, "update", id, "--grants", "", "--roles", "", "--description", "nightly",
		"--metadata", "note=a, b", "--if-version", fmt.Sprint(shown["version"]), "--json")
	var updated map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &updated))
	assert.Nil(t, updated["grants"])
	assert.Equal(t, "nightly", updated["description"])
	assert.Equal(t, map[string]any{"note": "a, b"}, updated["metadata"])
	assert.EqualValues(t, shown["version"].(float64)+1, updated["version"])
	ok(t, dir, env, "update", id, "--grants", "devices=read", "--if-version", fmt.Sprint(updated["version"]))

	// The key works before it is revoked.
	store := open(t)
	v, err := apitoken.NewValidator(store, apitoken.Policy{})
	require.NoError(t, err)
	t.Cleanup(func() { v.Close(context.Background()) })
	req := apitoken.Request{Org: "acme", API: "devices", Access: apitoken.AccessRead}
	_, err = v.Validate(t.Context(), key, req)
	require.NoError(t, err)

	ok(t, dir, env, "revoke", id)
	_, err = v.Validate(t.Context(), key, req)
	require.ErrorIs(t, err, apitoken.ErrRevoked)

	r = ok(t, dir, env, "list", "--json", "--status", "revoked")
	require.Len(t, listJSON(t, r.stdout), 1)
	r = ok(t, dir, env, "list", "--json", "--status", "active")
	require.Empty(t, listJSON(t, r.stdout))
}

func TestLifecycleSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.db")
	lifecycle(t, "sqlite:"+path, func(t *testing.T) apitoken.Store {
		s, err := sqlite.Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	})
}

func TestLifecyclePostgres(t *testing.T) {
	t.Parallel()
	url := startPostgres(t)
	// In a schema and with a table prefix of their own, as a host may keep
	// them (sqlstore.WithSchema, WithTablePrefix).
	lifecycle(t, url+"&schema=auth&table_prefix=cli_", func(t *testing.T) apitoken.Store {
		db, err := postgres.OpenDB(t.Context(), url)
		require.NoError(t, err)
		s, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithCloseDB(),
			sqlstore.WithSchema("auth"), sqlstore.WithTablePrefix("cli_"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	})
}

func TestLifecycleRedis(t *testing.T) {
	t.Parallel()
	addr := startRedis(t)
	lifecycle(t, "redis://"+addr+"/0?prefix=clitest", func(t *testing.T) apitoken.Store {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		s, err := redisstore.New(t.Context(), c, redisstore.WithKeyPrefix("clitest"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	})
}

// TestPrune10000 issues 10,000 tokens 100 days ago (unused since, so idle
// past the default 90 days) through an Issuer on the SQLite file, and runs
// apitoken prune on it.
func TestPrune10000(t *testing.T) {
	t.Parallel()
	const n = 10_000
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate())
	require.NoError(t, err)
	past := time.Now().Add(-100 * 24 * time.Hour)
	iss, err := apitoken.NewIssuer(s, apitoken.Policy{}, apitoken.WithClock(func() time.Time { return past }))
	require.NoError(t, err)
	start := time.Now()
	for i := range n {
		_, _, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindUser, OwnerID: fmt.Sprint(i % 100), Name: "idle"})
		require.NoError(t, err)
	}
	// One token in use survives.
	now, err := apitoken.NewIssuer(s, apitoken.Policy{})
	require.NoError(t, err)
	_, _, err = now.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "fresh", Name: "fresh"})
	require.NoError(t, err)
	require.NoError(t, s.Close(t.Context()))
	t.Logf("issued %d tokens in %v", n, time.Since(start).Round(time.Millisecond))

	env := []string{"APITOKEN_STORE=sqlite:" + path}
	r := ok(t, dir, env, "prune", "--dry-run")
	assert.Equal(t, "would prune 10000 idle, 0 expired\n", r.stdout)

	start = time.Now()
	r = ok(t, dir, env, "prune")
	t.Logf("apitoken prune: %q in %v", r.stdout, time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "pruned 10000 idle, 0 expired\n", r.stdout)
	assert.Empty(t, r.stderr, "no progress line when stderr is not a terminal")

	r = ok(t, dir, env, "list", "--json")
	toks := listJSON(t, r.stdout)
	require.Len(t, toks, 1)
	assert.Equal(t, "fresh", toks[0]["name"])
}

// TestExitCodes checks the exit code and the one-line message of each
// outcome.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	env := []string{"APITOKEN_STORE=sqlite:" + path}
	policy := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"allowed_lifetimes": ["3 months", "6 months"]}`), 0o600))
	badPolicy := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badPolicy, []byte("{\n  \"idle_timeout\": \"soon\"\n}"), 0o600))

	// Not migrated yet: 5, and the file is not created.
	r := cli(t, dir, env, "list")
	assert.Equal(t, 5, r.code)
	assert.Contains(t, r.stderr, sqlstore.ErrNotMigrated.Error())
	assert.NoFileExists(t, path)

	ok(t, dir, env, "migrate")
	key := strings.TrimSpace(ok(t, dir, env, "issue", "--owner", "user:42", "--name", "laptop").stdout)
	id := listJSON(t, ok(t, dir, env, "list", "--json").stdout)[0]["id"].(string)
	revoked := listJSON(t, ok(t, dir, env, "issue", "--owner", "user:43", "--name", "old", "--json").stdout)[0]["id"].(string)
	ok(t, dir, env, "revoke", revoked)

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		msg  string // in the message
	}{
		{"ok", env, []string{"show", id}, 0, ""},
		{"unknown command", env, []string{"frobnicate"}, 1, "unknown command"},
		{"unknown flag", env, []string{"list", "--frob"}, 1, "unknown flag"},
		{"missing argument", env, []string{"show"}, 1, "accepts 1 arg"},
		{"no store", nil, []string{"list"}, 1, "APITOKEN_STORE"},
		{"bad store scheme", nil, []string{"list", "--store", "mysql://x"}, 1, "unknown scheme"},
		{"bad table prefix", nil, []string{"list", "--store", "sqlite:" + path + "?table_prefix=Bad-"}, 1, "table_prefix"},
		{"bad store parameter", nil, []string{"list", "--store", "sqlite:" + path + "?schema=auth"}, 1, "unknown parameter"},
		{"bad lifetime", env, []string{"issue", "--owner", "user:1", "--name", "x", "--lifetime", "soon"}, 1, "--lifetime"},
		{"bad status", env, []string{"list", "--status", "sleeping"}, 1, "--status"},
		{"bad hash key", append(env[:1:1], "APITOKEN_HASH_KEYS=zz"), []string{"list"}, 1, "hash key 1"},
		{"nothing to update", env, []string{"update", id}, 1, "nothing to update"},
		{"not found", env, []string{"show", "0192f000-0000-7000-8000-000000000000"}, 2, "not found"},
		{"revoke not found", env, []string{"revoke", "nope"}, 2, "not found"},
		{"policy", env, []string{"issue", "--policy", policy, "--owner", "user:1", "--name", "x", "--lifetime", "90d"}, 3, "AllowedLifetimes"},
		{"policy file", env, []string{"list", "--policy", badPolicy}, 3, "bad.json:2: idle_timeout"},
		{"regenerate lifetime", env, []string{"regenerate", id, "--policy", policy, "--lifetime", "12 months"}, 3, "AllowedLifetimes"},
		{"policy owner", env, []string{"issue", "--kind", "org", "--name", "x"}, 3, "policy"},
		{"conflict", env, []string{"update", id, "--name", "y", "--if-version", "99"}, 4, "conflict"},
		{"regenerate conflict", env, []string{"regenerate", id, "--if-version", "99"}, 4, "conflict"},
		{"store unavailable", nil, []string{"list", "--store", "redis://127.0.0.1:1/0?dial_timeout=1s&max_retries=-1"}, 5, "redisstore"},
		{"frozen update", env, []string{"update", revoked, "--name", "y"}, 6, "revoked"},
		{"frozen regenerate", env, []string{"regenerate", revoked}, 6, "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, dir, tc.env, tc.args...)
			assert.Equal(t, tc.code, r.code, "apitoken %v: stderr %q", tc.args, r.stderr)
			if tc.code != 0 {
				// One line of error, after any warnings (a "regenerate
				// lifetime" under policy.json, refused, has made it the
				// store's latest policy, so the commands without it warn).
				msg := r.stderr[strings.LastIndex(strings.TrimSuffix(r.stderr, "\n"), "\n")+1:]
				assert.Regexp(t, `^apitoken: [^\n]*\n$`, msg, "one line of error on stderr")
				assert.NotContains(t, msg, "apitoken: warning:")
				assert.Regexp(t, `^(apitoken: warning: [^\n]*\n)*$`, strings.TrimSuffix(r.stderr, msg), "warnings before it")
				assert.Contains(t, msg, tc.msg)
				assert.NotContains(t, r.stderr, "apitoken: apitoken:")
			}
			assert.NotContains(t, r.stdout+r.stderr, key)
		})
	}
}

// TestHashKeys: a key issued under hash keys validates with the same keys
// only, and regenerate prints the new key once, the old one kept for the
// grace period.
func TestHashKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	hk := bytes.Repeat([]byte{7}, 32)
	keyFile := filepath.Join(dir, "hash.keys")
	require.NoError(t, os.WriteFile(keyFile, []byte(hex.EncodeToString(hk)+"\n"), 0o600))
	env := []string{"APITOKEN_STORE=sqlite:" + path}
	ok(t, dir, env, "migrate")
	var issued keyJSON
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, env, "issue", "--hash-key-file", keyFile,
		"--owner", "org:acme", "--name", "ci", "--grants", "*=full", "--json").stdout), &issued))
	require.NotEmpty(t, issued.Key)

	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	req := apitoken.Request{Org: "acme"}
	with, err := apitoken.NewValidator(s, apitoken.Policy{}, apitoken.WithHashKeys(hk))
	require.NoError(t, err)
	without, err := apitoken.NewValidator(s, apitoken.Policy{})
	require.NoError(t, err)
	t.Cleanup(func() { with.Close(context.Background()); without.Close(context.Background()) })
	_, err = with.Validate(t.Context(), issued.Key, req)
	require.NoError(t, err)
	_, err = without.Validate(t.Context(), issued.Key, req)
	require.ErrorIs(t, err, apitoken.ErrUnknown)

	// Regenerate with the keys in the environment (base64 this time).
	env = append(env, "APITOKEN_HASH_KEYS=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=")
	r := ok(t, dir, env, "regenerate", issued.ID, "--grace", "1 hour", "--lifetime", "3mo")
	fresh := strings.TrimSuffix(r.stdout, "\n")
	assert.NotEqual(t, issued.Key, fresh)
	assert.NotContains(t, r.stderr, fresh)
	for _, k := range []string{issued.Key, fresh} { // the old one in its grace period
		_, err = with.Validate(t.Context(), k, req)
		require.NoError(t, err)
	}
}

// TestPruneProgressOnTerminal runs prune with stderr on a terminal (a
// pseudo-terminal from util-linux's script) and finds the running count.
func TestPruneProgressOnTerminal(t *testing.T) {
	t.Parallel()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give the binary a terminal")
	}
	dir := t.TempDir()
	env := []string{"APITOKEN_STORE=sqlite:" + filepath.Join(dir, "tokens.db")}
	ok(t, dir, env, "migrate")
	ok(t, dir, env, "issue", "--owner", "user:1", "--name", "x")
	for _, tc := range []struct{ args, progress, result string }{
		{"prune --dry-run", "\rscanned 1 tokens", "would prune 0 idle, 0 expired"},
		{"prune", "\rpruned 0 tokens", "pruned 0 idle, 0 expired"},
	} {
		cmd := exec.Command(script, "-qec", bin+" "+tc.args, "/dev/null")
		cmd.Dir = dir
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "USER=tester"}, env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), tc.progress)
		assert.Contains(t, string(out), tc.result)
	}
}
