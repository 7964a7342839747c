package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverPolicy is the servers' policy in the tests: prefix "acme".
var serverPolicy = apitoken.Policy{Prefix: "acme", Roles: map[string]apitoken.Role{
	"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
}}

// writePolicy writes p as the file a host generates from its Go policy.
func writePolicy(t *testing.T, dir, name string, p apitoken.Policy) string {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// serverIssues issues one org token through a Go Issuer under the servers'
// policy, as the servers would, and returns its ID.
func serverIssues(t *testing.T, s apitoken.Store) string {
	t.Helper()
	iss, err := apitoken.NewIssuer(s, serverPolicy)
	require.NoError(t, err)
	_, tok, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "acme", Name: "server", Roles: []string{"observer"}})
	require.NoError(t, err)
	return tok.ID
}

// testNow is the creation time of tokens written straight to a store.
var testNow = time.Now().UTC().Truncate(time.Second)

const (
	wantRefused = `apitoken: the store holds tokens of policy prefix "acme", this command's policy has prefix "tok" ` +
		`(no policy file given: the default policy): refusing to write; give the servers' policy file with --policy FILE or APITOKEN_POLICY` + "\n"
	wantReadWarning = `apitoken: warning: the store holds tokens of policy prefix "acme", this command's policy has prefix "tok" ` +
		`(no policy file given: the default policy): statuses and expiries follow this command's policy; ` +
		`give the servers' policy file with --policy FILE or APITOKEN_POLICY` + "\n"
	wantDefendWarning = `apitoken: warning: the store holds tokens of policy prefix "acme", this command's policy has prefix "tok" ` +
		`(no policy file given: the default policy): going on, since this command uses no policy; ` +
		`give the servers' policy file with --policy FILE or APITOKEN_POLICY` + "\n"
)

// TestPolicyOfAnotherPrefix is §5 of issue 20: the CLI without the servers'
// policy issued tok_ keys the servers reject as malformed, with exit code
// 0. Now the commands that write under the policy refuse, naming both
// prefixes and --policy; the others warn.
func TestPolicyOfAnotherPrefix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate())
	require.NoError(t, err)
	id := serverIssues(t, s)
	require.NoError(t, s.Close(context.Background()))
	env := []string{"APITOKEN_STORE=sqlite:" + path}

	for _, args := range [][]string{
		{"issue", "--owner", "org:acme", "--name", "cli"},
		{"regenerate", id},
		{"update", id, "--name", "renamed"},
		{"prune"},
	} {
		r := cli(t, dir, env, args...)
		assert.Equal(t, exitPolicy, r.code, "apitoken %v", args)
		assert.Equal(t, wantRefused, r.stderr, "apitoken %v", args)
		assert.Empty(t, r.stdout, "apitoken %v", args)
	}
	for _, args := range [][]string{{"list"}, {"show", id}, {"expiring", "--within", "1000d"}} {
		r := ok(t, dir, env, args...)
		assert.Equal(t, wantReadWarning, r.stderr, "apitoken %v", args)
		assert.Contains(t, r.stdout, id, "apitoken %v", args)
	}
	toks := listJSON(t, ok(t, dir, env, "list", "--json").stdout)
	require.Len(t, toks, 1, "the refused commands wrote nothing")
	assert.Equal(t, "server", toks[0]["name"])
	assert.EqualValues(t, 1, toks[0]["version"])

	// With the servers' policy file, generated from their Go policy, it
	// writes, and says nothing of policies.
	policy := writePolicy(t, dir, "policy.json", serverPolicy)
	r := ok(t, dir, env, "issue", "--policy", policy, "--owner", "org:acme", "--name", "cli", "--roles", "observer")
	assert.True(t, strings.HasPrefix(r.stdout, "acme_"), "the key has the servers' prefix: %q", r.stdout)
	assert.NotContains(t, r.stderr, "warning")
	r = ok(t, dir, env, "list", "--policy", policy)
	assert.Empty(t, r.stderr)

	// The defensive commands run without it.
	r = ok(t, dir, env, "revoke", id)
	assert.Equal(t, wantDefendWarning, r.stderr)
	assert.Equal(t, "revoked "+id+"\n", r.stdout)
}

// TestPolicyOfAnotherFingerprint: a policy file with the servers' prefix
// that differs from their policy runs, with a warning naming both
// fingerprints.
func TestPolicyOfAnotherFingerprint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate())
	require.NoError(t, err)
	serverIssues(t, s)
	require.NoError(t, s.Close(context.Background()))
	env := []string{"APITOKEN_STORE=sqlite:" + path}

	stale := serverPolicy.Clone()
	stale.MaxTokensPerOwner = 5
	policy := writePolicy(t, dir, "stale.json", stale)
	want := `apitoken: warning: this command's policy (policy file ` + policy + `) is not the one the store's tokens were last issued under ` +
		`(fingerprint "` + stale.ID().Fingerprint + `", the store's "` + serverPolicy.ID().Fingerprint + `"): ` +
		`give the servers' policy file with --policy FILE or APITOKEN_POLICY, unless the servers' policy changed since` + "\n"
	r := ok(t, dir, env, "list", "--policy", policy)
	assert.Equal(t, want, r.stderr)
	r = ok(t, dir, append(env, "APITOKEN_POLICY="+policy), "issue", "--owner", "org:acme", "--name", "cli", "--roles", "observer")
	assert.True(t, strings.HasPrefix(r.stderr, want), "issue warns first: %q", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "warning"))
	// The store now holds the latest writer's policy: the stale file's.
	r = ok(t, dir, env, "list", "--policy", policy)
	assert.Empty(t, r.stderr)
}

// TestFirstIssueRecordsThePolicy: on a store that records no policy, the
// CLI's first issue without a policy file says that the default policy
// becomes the store's; a server under another prefix is then refused,
// loudly, instead of its keys or the CLI's failing in silence.
func TestFirstIssueRecordsThePolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	env := []string{"APITOKEN_STORE=sqlite:" + path}
	ok(t, dir, env, "migrate")
	r := ok(t, dir, env, "issue", "--owner", "user:1", "--name", "first")
	assert.True(t, strings.HasPrefix(r.stderr, `apitoken: warning: the store records no policy yet and no policy file is given: `+
		`the default policy (prefix "tok") becomes the store's, and Issuers under another prefix will be refused; `+
		`give the servers' policy file with --policy FILE or APITOKEN_POLICY`+"\n"), "stderr %q", r.stderr)
	r = ok(t, dir, env, "issue", "--owner", "user:1", "--name", "second")
	assert.NotContains(t, r.stderr, "warning", "said once")

	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	iss, err := apitoken.NewIssuer(s, serverPolicy)
	require.NoError(t, err)
	_, _, err = iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "acme", Name: "server"})
	require.ErrorIs(t, err, apitoken.ErrPolicy)
	assert.ErrorContains(t, err, `the store holds tokens of policy prefix "tok", this Issuer's policy has prefix "acme"`)
}

// TestRedisNamespace is §5 of issue 20 on Redis: without the servers' key
// prefix the CLI listed an empty namespace with exit code 0 and no word.
func TestRedisNamespace(t *testing.T) {
	t.Parallel()
	addr := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	s, err := redisstore.New(t.Context(), c, redisstore.WithKeyPrefix("servers"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	id := serverIssues(t, s)
	dir := t.TempDir()

	// The wrong namespace: the default one, empty.
	r := ok(t, dir, []string{"APITOKEN_STORE=redis://" + addr + "/0"}, "list")
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"), "only the header: %q", r.stdout)
	assert.True(t, strings.HasPrefix(r.stdout, "ID "), "only the header: %q", r.stdout)
	assert.Equal(t, `apitoken: warning: the Redis namespace "apitoken" holds no tokens and no policy: if the servers keep their tokens `+
		`under another key prefix, give it with ?prefix=NS in the store URL (their redisstore.WithKeyPrefix)`+"\n", r.stderr)
	r = ok(t, dir, []string{"APITOKEN_STORE=redis://" + addr + "/0"}, "list", "--json")
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, `the Redis namespace "apitoken" holds no tokens`)

	// The servers' namespace without their policy: warned, and refused.
	env := []string{"APITOKEN_STORE=redis://" + addr + "/0?prefix=servers"}
	r = ok(t, dir, env, "list")
	assert.Equal(t, wantReadWarning, r.stderr)
	assert.Contains(t, r.stdout, id)
	r = cli(t, dir, env, "issue", "--owner", "org:acme", "--name", "cli")
	assert.Equal(t, exitPolicy, r.code)
	assert.Equal(t, wantRefused, r.stderr)

	// An empty listing of a namespace that holds tokens says nothing of
	// namespaces, even if no policy was recorded (tokens written before
	// the store recorded one).
	old, err := redisstore.New(t.Context(), c, redisstore.WithKeyPrefix("old"))
	require.NoError(t, err)
	t.Cleanup(func() { old.Close(context.Background()) })
	tok := &apitoken.Token{ID: "0192f000-0000-7000-8000-0000000000aa", Kind: apitoken.KindUser, OwnerID: "u1", Name: "old",
		Hint: "tok_ab…cd", CreatedAt: testNow, IssuedAt: testNow, UpdatedAt: testNow, Version: 1}
	tok.Hash[0] = 1
	require.NoError(t, old.Create(t.Context(), tok, 0))
	r = ok(t, dir, []string{"APITOKEN_STORE=redis://" + addr + "/0?prefix=old"}, "list", "--owner", "user:nobody")
	assert.Empty(t, r.stderr)
}
