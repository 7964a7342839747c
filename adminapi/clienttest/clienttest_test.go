package clienttest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

const org = "org_demo"

// wantLifecycle is what each client's lifecycle program prints: one line
// per step, as testdata/lifecycle.go and testdata/lifecycle.mts write
// them.
const wantLifecycle = `openapi.json 200 3.1.0
create 201 active true
list 200 true
get 200 ci
update 200 ci-renamed true
regenerate 200 true
revoke 200 revoked
delete 204
get after delete 404 not_found
forged token 401 invalid_token Bearer realm="admin", error="invalid_token"
`

// server is the admin API as examples/server mounts it: at /api/v1,
// behind package httpauth's token middleware for the "apitokens" API, on
// a memory store; a token with the token-admin role manages the org's
// tokens and may grant no more than it holds.
type server struct {
	url   string // the API's base URL, ending in /api/v1
	token string // the manager's token, for the clients' environment only
	iss   *apitoken.Issuer
}

func newServer(t *testing.T) *server {
	t.Helper()
	policy := apitoken.Policy{
		Prefix: "demo",
		Roles: map[string]apitoken.Role{
			"reader":      {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"token-admin": {Grants: apitoken.Grants{"devices": apitoken.AccessFull, "apitokens": apitoken.AccessFull}},
		},
		OrgRateLimit: apitoken.Limit{Rate: apitoken.Per(60, time.Minute), Burst: 100},
	}
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, policy)
	require.NoError(t, err)
	v, err := apitoken.NewValidator(store, policy, apitoken.WithLimiter(apitoken.NewLocalLimiter()), apitoken.WithSingleTenant(org))
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close(context.Background()) }) // t.Context() is already cancelled here
	auth, err := httpauth.New(v, httpauth.WithAPIName("apitokens"), httpauth.WithRealm("admin"))
	require.NoError(t, err)
	admin, err := adminapi.New(iss, func(r *http.Request) (*adminapi.Manager, error) {
		p, ok := httpauth.PrincipalFrom(r.Context())
		if !ok {
			return nil, adminapi.ErrUnauthenticated
		}
		if !p.HasRole("token-admin") {
			return nil, errors.New("not a token-admin token") // 403
		}
		return &adminapi.Manager{Actor: "token:" + p.TokenID, Privileges: p,
			May: func(s adminapi.Scope) bool { return s.Owner == apitoken.OrgOwner(org) }}, nil
	}, adminapi.WithPolicy(policy))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", auth.Wrap(http.StripPrefix("/api/v1", admin)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	secret, _, err := iss.Issue(apitoken.WithActor(t.Context(), "clienttest"), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: org,
		Name: "manager", Roles: []string{"token-admin", "reader"}})
	require.NoError(t, err)
	return &server{url: srv.URL + "/api/v1", token: secret.Reveal(), iss: iss}
}

// env is the environment of a lifecycle program against s.
func (s *server) env() []string {
	return append(os.Environ(), "ADMIN_URL="+s.url, "ADMIN_ORG="+org, "ADMIN_TOKEN="+s.token)
}

// checkOnlyManager: after a lifecycle only the manager's token is left.
func (s *server) checkOnlyManager(t *testing.T) {
	t.Helper()
	page, err := s.iss.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	var names []string
	for _, tok := range page.Tokens {
		names = append(names, tok.Name)
	}
	assert.Equal(t, []string{"manager"}, names, "tokens left")
}

// run runs name with args in dir (with env, if not nil) and returns its
// standard output; a failure reports both outputs, which never hold a
// key.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "%s %s\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), &stdout, &stderr)
	return stdout.String()
}

// missing skips the test for want of a tool, or fails it under CI=true,
// where every tool must be there.
func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// writeDocument writes adminapi's document into dir and returns its path.
func writeDocument(t *testing.T, dir string) string {
	t.Helper()
	doc := filepath.Join(dir, "openapi.json")
	require.NoError(t, os.WriteFile(doc, adminapi.OpenAPI(), 0o644))
	return doc
}

// TestGoClient generates the Go client with oapi-codegen (the version
// go.mod pins as a tool) into a temporary directory, builds
// testdata/lifecycle.go with it, and runs the lifecycle against a server.
// The generated package and the program join this module's build through
// an -overlay (internal/apiclient and internal/lifecycle exist only
// there), so they build with the dependency versions of this go.mod.
func TestGoClient(t *testing.T) {
	t.Parallel()
	goCmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		missing(t, "the go command is not in PATH")
	}
	wd, err := os.Getwd()
	require.NoError(t, err)
	dir := t.TempDir()
	doc := writeDocument(t, dir)

	// The plain command, without options, as a new user first tries it (it
	// once failed: duplicate typename 'Limit').
	run(t, wd, nil, goCmd, "tool", "oapi-codegen", "-package", "apiclient", "-o", filepath.Join(dir, "plain.gen.go"), doc)

	gen := filepath.Join(dir, "client.gen.go")
	run(t, wd, nil, goCmd, "tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "-o", gen, doc)
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(wd, "internal", "apiclient", "client.gen.go"): gen,
		filepath.Join(wd, "internal", "lifecycle", "main.go"):       filepath.Join(wd, "testdata", "lifecycle.go"),
	}})
	require.NoError(t, err)
	overlayFile := filepath.Join(dir, "overlay.json")
	require.NoError(t, os.WriteFile(overlayFile, overlay, 0o644))
	bin := filepath.Join(dir, "lifecycle")
	run(t, wd, nil, goCmd, "build", "-overlay", overlayFile, "-o", bin, "./internal/lifecycle")

	s := newServer(t)
	assert.Equal(t, wantLifecycle, run(t, dir, s.env(), bin))
	s.checkOnlyManager(t)
}

// TestTypeScriptClient generates the TypeScript types with
// openapi-typescript into a temporary directory, compiles
// testdata/lifecycle.mts against them and openapi-fetch with tsc (strict),
// and runs the lifecycle with node against a server. The npm packages come
// from the directory APITOKEN_CLIENT_TOOLS names (its node_modules).
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	tools := os.Getenv("APITOKEN_CLIENT_TOOLS")
	if tools == "" {
		missing(t, "APITOKEN_CLIENT_TOOLS is not set: name a directory where openapi-typescript, openapi-fetch and typescript are installed (scripts/test does)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not in PATH")
	}
	modules := filepath.Join(tools, "node_modules")
	for _, p := range []string{".bin/openapi-typescript", ".bin/tsc", "openapi-fetch/package.json"} {
		if _, err := os.Stat(filepath.Join(modules, p)); err != nil {
			missing(t, "APITOKEN_CLIENT_TOOLS: "+err.Error())
		}
	}
	dir := t.TempDir()
	doc := writeDocument(t, dir)
	for _, f := range []string{"lifecycle.mts", "tsconfig.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	require.NoError(t, os.Symlink(modules, filepath.Join(dir, "node_modules")))

	run(t, dir, nil, filepath.Join(modules, ".bin", "openapi-typescript"), doc, "-o", "schema.d.mts")
	run(t, dir, nil, filepath.Join(modules, ".bin", "tsc"), "-p", ".")

	s := newServer(t)
	assert.Equal(t, wantLifecycle, run(t, dir, s.env(), node, filepath.Join("out", "lifecycle.mjs")))
	s.checkOnlyManager(t)
}
