package adminapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
)

func TestNew(t *testing.T) {
	e := newEnv(t)
	_, err := adminapi.New(e.iss, nil)
	require.Error(t, err, "no hook, no handler")
	_, err = adminapi.New(nil, managers)
	require.Error(t, err)
	_, err = adminapi.New(e.iss, managers, adminapi.WithMaxBodyBytes(0))
	require.Error(t, err)
	_, err = adminapi.New(e.iss, managers, adminapi.WithCrossOriginProtection(nil))
	require.Error(t, err)
	_, err = adminapi.New(e.iss, managers, adminapi.WithPolicy(apitoken.Policy{Prefix: "BAD"}))
	require.ErrorIs(t, err, apitoken.ErrPolicy)
}

// The three scopes, each with a manager who may manage it.
var scopes = []struct {
	name, path, as string
	kind           string
	owner          string
}{
	{"self", "/self/apitokens", "alice", "user", "alice"},
	{"org", "/orgs/org_b/apitokens", "bob", "org", "org_b"},
	{"user", "/users/carol/apitokens", "root", "user", "carol"},
}

func TestLifecycle(t *testing.T) {
	for _, sc := range scopes {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t)
			created := e.do(req{method: "POST", path: sc.path, as: sc.as, body: map[string]any{
				"name": "ci", "description": "nightly", "roles": []string{"observer"},
				"lifetime": "3mo", "ip_filter": map[string]any{"name": "office"}, "metadata": map[string]string{"team": "ops"},
			}})
			require.Equal(t, http.StatusCreated, created.Code, "%s", created.Body)
			assert.Equal(t, "no-store", created.Header.Get("Cache-Control"))
			tok := created.JSON(t)
			id := tok["id"].(string)
			key := tok["key"].(string)
			assert.True(t, strings.HasPrefix(key, "acme_"))
			assert.Equal(t, "apitokens/"+id, created.Header.Get("Location"))
			assert.Equal(t, `"1"`, created.Header.Get("ETag"))
			assert.Equal(t, sc.kind, tok["kind"])
			assert.Equal(t, sc.owner, tok["owner_id"])
			assert.Equal(t, "user:"+sc.as, tok["created_by"])
			assert.Equal(t, "active", tok["status"])
			assert.Equal(t, start.AddDate(0, 3, 0).Format(time.RFC3339), tok["expires_at"])
			for _, secretField := range []string{"hash", "Hash", "sealed", "Sealed", "prev_hash"} {
				assert.NotContains(t, tok, secretField)
			}
			one := sc.path + "/" + id

			got := e.do(req{method: "GET", path: one, as: sc.as})
			require.Equal(t, http.StatusOK, got.Code, "%s", got.Body)
			assert.Equal(t, `"1"`, got.Header.Get("ETag"))
			assert.NotContains(t, string(got.Body), key)
			assert.Equal(t, tok["hint"], got.JSON(t)["hint"])

			shown := e.do(req{method: "POST", path: one + "/reveal", as: sc.as})
			require.Equal(t, http.StatusOK, shown.Code, "%s", shown.Body)
			assert.Equal(t, key, shown.JSON(t)["key"])

			list := e.do(req{method: "GET", path: sc.path, as: sc.as})
			require.Equal(t, http.StatusOK, list.Code, "%s", list.Body)
			assert.Len(t, list.JSON(t)["tokens"], 1)
			expiring := e.do(req{method: "GET", path: sc.path + "/expiring?within=4mo", as: sc.as})
			require.Equal(t, http.StatusOK, expiring.Code, "%s", expiring.Body)
			assert.Len(t, expiring.JSON(t)["tokens"], 1)

			upd := e.do(req{method: "PATCH", path: one, as: sc.as, header: map[string]string{"If-Match": `"1"`},
				body: map[string]any{"name": "ci-2", "description": nil, "grants": map[string]string{"devices": "read"},
					"ip_filter": map[string]any{"prefixes": []string{"198.51.100.0/24"}}, "lifetime": "6mo", "resources": []string{}}})
			require.Equal(t, http.StatusOK, upd.Code, "%s", upd.Body)
			u := upd.JSON(t)
			assert.Equal(t, "ci-2", u["name"])
			assert.NotContains(t, u, "description")
			assert.Equal(t, map[string]any{"devices": "read"}, u["grants"])
			assert.Equal(t, map[string]any{"prefixes": []any{"198.51.100.0/24"}}, u["ip_filter"])
			assert.Equal(t, `"2"`, upd.Header.Get("ETag"))

			stale := e.do(req{method: "PATCH", path: one, as: sc.as, header: map[string]string{"If-Match": `"1"`},
				body: map[string]any{"name": "lost"}})
			require.Equal(t, http.StatusPreconditionFailed, stale.Code, "%s", stale.Body)
			assert.Equal(t, "application/problem+json", stale.Header.Get("Content-Type"))

			e.clock.Advance(time.Hour)
			regen := e.do(req{method: "POST", path: one + "/regenerate", as: sc.as,
				header: map[string]string{"If-Match": `"2"`}, body: map[string]any{"lifetime": "12mo", "grace": "1h"}})
			require.Equal(t, http.StatusOK, regen.Code, "%s", regen.Body)
			assert.Equal(t, "no-store", regen.Header.Get("Cache-Control"))
			r := regen.JSON(t)
			assert.NotEqual(t, key, r["key"])
			assert.Equal(t, id, r["id"])
			assert.Equal(t, e.clock.Now().AddDate(1, 0, 0).Format(time.RFC3339), r["expires_at"])

			staleRegen := e.do(req{method: "POST", path: one + "/regenerate", as: sc.as,
				header: map[string]string{"If-Match": `"2"`}})
			require.Equal(t, http.StatusPreconditionFailed, staleRegen.Code, "%s", staleRegen.Body)

			rev := e.do(req{method: "POST", path: one + "/revoke", as: sc.as})
			require.Equal(t, http.StatusOK, rev.Code, "%s", rev.Body)
			assert.Equal(t, "revoked", rev.JSON(t)["status"])

			frozen := e.do(req{method: "PATCH", path: one, as: sc.as, body: map[string]any{"name": "x"}})
			require.Equal(t, http.StatusConflict, frozen.Code, "%s", frozen.Body)
			assert.Equal(t, "revoked", frozen.JSON(t)["code"])

			e.create(sc.as, sc.path, map[string]any{"name": "second"})
			e.create(sc.as, sc.path, map[string]any{"name": "third"})
			all := e.do(req{method: "POST", path: sc.path + "/revoke-all", as: sc.as})
			require.Equal(t, http.StatusOK, all.Code, "%s", all.Body)
			assert.Equal(t, float64(2), all.JSON(t)["revoked"])

			revoked := e.do(req{method: "GET", path: sc.path + "?status=revoked", as: sc.as})
			require.Equal(t, http.StatusOK, revoked.Code)
			assert.Len(t, revoked.JSON(t)["tokens"], 3)
			active := e.do(req{method: "GET", path: sc.path + "?status=active", as: sc.as})
			assert.Empty(t, active.JSON(t)["tokens"])

			del := e.do(req{method: "DELETE", path: one, as: sc.as})
			require.Equal(t, http.StatusNoContent, del.Code, "%s", del.Body)
			assert.Empty(t, del.Body)
			gone := e.do(req{method: "GET", path: one, as: sc.as})
			require.Equal(t, http.StatusNotFound, gone.Code)
		})
	}
}

// TestActor: the manager's actor ID is the new token's CreatedBy and the
// actor of every audit event.
func TestActor(t *testing.T) {
	e := newEnv(t)
	id := e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "ci"})["id"].(string)
	one := "/orgs/org_b/apitokens/" + id
	for _, r := range []req{
		{method: "PATCH", path: one, body: map[string]any{"name": "ci-2"}},
		{method: "POST", path: one + "/regenerate"},
		{method: "POST", path: one + "/reveal"},
		{method: "POST", path: one + "/revoke"},
		{method: "POST", path: "/orgs/org_b/apitokens/revoke-all"},
		{method: "DELETE", path: one},
	} {
		r.as = "bob"
		res := e.do(r)
		require.Less(t, res.Code, 300, "%s %s: %s", r.method, r.path, res.Body)
	}
	var types []apitoken.EventType
	for _, ev := range e.events {
		assert.Equal(t, "user:bob", ev.Actor, "%s", ev.Type)
		types = append(types, ev.Type)
	}
	assert.Equal(t, []apitoken.EventType{apitoken.EventCreated, apitoken.EventUpdated, apitoken.EventRegenerated,
		apitoken.EventRecovered, apitoken.EventRevoked, apitoken.EventRevokedAll, apitoken.EventDeleted}, types)
}

func TestReveal(t *testing.T) {
	e := newEnv(t)
	tok := e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "ci"})
	res := e.do(req{method: "POST", path: "/orgs/org_b/apitokens/" + tok["id"].(string) + "/reveal", as: "bob"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, tok["key"], res.JSON(t)["key"])

	// An Issuer without seal keys stores no recoverable secret.
	plain, err := apitoken.NewIssuer(e.store, testPolicy(), apitoken.WithClock(e.clock.Now))
	require.NoError(t, err)
	h, err := adminapi.New(plain, managers)
	require.NoError(t, err)
	sec, stored, err := plain.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_b", Name: "plain"})
	require.NoError(t, err)
	res = e.send(h, req{method: "POST", path: "/orgs/org_b/apitokens/" + stored.ID + "/reveal", as: "bob"})
	require.Equal(t, http.StatusConflict, res.Code, "%s", res.Body)
	assert.Equal(t, "not_recoverable", res.JSON(t)["code"])
	assert.NotContains(t, string(res.Body), sec.Reveal())
}

// TestExpiredIsFrozen: an expired token can be listed, read and deleted,
// but not updated, regenerated or revealed.
func TestExpiredIsFrozen(t *testing.T) {
	e := newEnv(t)
	id := e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "ci", "lifetime": "3mo"})["id"].(string)
	one := "/orgs/org_b/apitokens/" + id
	e.clock.Advance(100 * 24 * time.Hour)
	for _, r := range []req{
		{method: "PATCH", path: one, body: map[string]any{"name": "x"}},
		{method: "POST", path: one + "/regenerate", body: map[string]any{"lifetime": "6mo"}},
		{method: "POST", path: one + "/reveal"},
	} {
		r.as = "bob"
		res := e.do(r)
		require.Equal(t, http.StatusConflict, res.Code, "%s %s: %s", r.method, r.path, res.Body)
		p := res.JSON(t)
		assert.Equal(t, "expired", p["code"])
		assert.Contains(t, p["detail"], "delete it and create a new one")
	}
	res := e.do(req{method: "GET", path: "/orgs/org_b/apitokens?status=expired", as: "bob"})
	require.Equal(t, http.StatusOK, res.Code)
	assert.Len(t, res.JSON(t)["tokens"], 1)
	assert.Equal(t, "expired", e.do(req{method: "GET", path: one, as: "bob"}).JSON(t)["status"])
	require.Equal(t, http.StatusNoContent, e.do(req{method: "DELETE", path: one, as: "bob"}).Code)
}

func TestExpiring(t *testing.T) {
	e := newEnv(t)
	soon := e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "soon", "lifetime": "3mo"})["id"].(string)
	e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "later", "lifetime": "12 months"})
	revoked := e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "revoked", "lifetime": "3mo"})["id"].(string)
	require.Equal(t, http.StatusOK, e.do(req{method: "POST", path: "/orgs/org_b/apitokens/" + revoked + "/revoke", as: "bob"}).Code)
	e.clock.Advance(80 * 24 * time.Hour)
	res := e.do(req{method: "GET", path: "/orgs/org_b/apitokens/expiring?within=14d", as: "bob"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	toks := res.JSON(t)["tokens"].([]any)
	require.Len(t, toks, 1)
	assert.Equal(t, soon, toks[0].(map[string]any)["id"])
	res = e.do(req{method: "GET", path: "/orgs/org_b/apitokens/expiring?within=1d", as: "bob"})
	require.Equal(t, http.StatusOK, res.Code)
	assert.Empty(t, res.JSON(t)["tokens"])
}

func TestChallenge(t *testing.T) {
	e := newEnv(t, adminapi.WithChallenge(`Cookie realm="console"`))
	res := e.do(req{method: "GET", path: "/self/apitokens"})
	require.Equal(t, http.StatusUnauthorized, res.Code)
	assert.Equal(t, `Cookie realm="console"`, res.Header.Get("WWW-Authenticate"))
	_, err := adminapi.New(e.iss, managers, adminapi.WithChallenge("a\r\nb"))
	require.Error(t, err)
}

func TestPagination(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "t"})
	}
	var ids []string
	path := "/orgs/org_b/apitokens?limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		res := e.do(req{method: "GET", path: path, as: "bob"})
		require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
		page := res.JSON(t)
		toks := page["tokens"].([]any)
		assert.LessOrEqual(t, len(toks), 2)
		for _, tk := range toks {
			ids = append(ids, tk.(map[string]any)["id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/orgs/org_b/apitokens?limit=2&cursor=" + next
	}
	assert.Len(t, ids, 5)
}

func TestPolicyRoute(t *testing.T) {
	e := newEnv(t)
	res := e.do(req{method: "GET", path: "/policy", as: "nobody"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	p := res.JSON(t)
	assert.Equal(t, []any{"3mo", "6mo", "12mo"}, p["allowed_lifetimes"])
	assert.Equal(t, "6mo", p["default_lifetime"])
	assert.Equal(t, []any{"office"}, p["ip_filters"])
	assert.Contains(t, p["roles"], "observer")
	assert.NotContains(t, string(res.Body), "203.0.113.0", "named filters' prefixes stay private")

	bare, err := adminapi.New(e.iss, managers)
	require.NoError(t, err)
	res = e.send(bare, req{method: "GET", path: "/policy", as: "nobody"})
	require.Equal(t, http.StatusNotFound, res.Code)
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	res := e.do(req{method: "GET", path: "/openapi.json"})
	require.Equal(t, http.StatusOK, res.Code)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.Equal(t, adminapi.OpenAPI(), res.Body)
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	res := e.do(req{method: "GET", path: "/nope", as: "bob"})
	require.Equal(t, http.StatusNotFound, res.Code)
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	res = e.do(req{method: "PUT", path: "/orgs/org_b/apitokens", as: "bob", body: map[string]any{}})
	require.Equal(t, http.StatusMethodNotAllowed, res.Code)
	assert.Equal(t, "GET, POST", res.Header.Get("Allow"))
}

// routeInstance fills a route's wildcards: {org} org_a, {user} carol, {id} id.
func routeInstance(pattern, id string) string {
	return strings.NewReplacer("{org}", "org_a", "{user}", "carol", "{id}", id).Replace(pattern)
}

// TestDeniedEveryRoute: on every route but the document, a request
// without credentials is 401, one whose hook fails or who may not manage
// the scope is 403, and nothing changes.
func TestDeniedEveryRoute(t *testing.T) {
	e := newEnv(t)
	id := e.create("alice", "/orgs/org_a/apitokens", map[string]any{"name": "ci"})["id"].(string)
	e.create("root", "/users/carol/apitokens", map[string]any{"name": "ci"})
	before := e.snapshot()
	routes := e.h.Routes()
	require.NotEmpty(t, routes)
	for _, rt := range routes {
		if rt.Pattern == "/openapi.json" {
			continue
		}
		path := routeInstance(rt.Pattern, id)
		var body any
		if rt.Method == "POST" || rt.Method == "PATCH" {
			body = map[string]any{}
		}
		for as, want := range map[string]int{"": 401, "broken": 403, "nobody": 403} {
			if rt.Pattern == "/policy" && as == "nobody" {
				continue // any manager may read the policy
			}
			res := e.do(req{method: rt.Method, path: path, as: as, body: body})
			assert.Equal(t, want, res.Code, "%s %s as %q: %s", rt.Method, path, as, res.Body)
		}
	}
	assert.Equal(t, before, e.snapshot())
}

// TestOtherScopeIsNotFound: a manager of org_b gets, for org_a's token
// IDs, exactly the answer they get for an unknown ID, on every route
// naming a token; and org_a's token is unchanged.
func TestOtherScopeIsNotFound(t *testing.T) {
	e := newEnv(t)
	theirs := e.create("alice", "/orgs/org_a/apitokens", map[string]any{"name": "a"})["id"].(string)
	carols := e.create("root", "/users/carol/apitokens", map[string]any{"name": "c"})["id"].(string)
	before := e.snapshot()
	for _, rt := range e.h.Routes() {
		if !strings.Contains(rt.Pattern, "{id}") || !strings.HasPrefix(rt.Pattern, "/orgs/") {
			continue
		}
		var body any
		if rt.Method == "POST" || rt.Method == "PATCH" {
			body = map[string]any{}
		}
		for _, id := range []string{theirs, carols} {
			path := strings.NewReplacer("{org}", "org_b", "{id}", id).Replace(rt.Pattern)
			unknown := strings.NewReplacer("{org}", "org_b", "{id}", "0192f000-0000-7000-8000-000000000000").Replace(rt.Pattern)
			got := e.do(req{method: rt.Method, path: path, as: "bob", body: body})
			want := e.do(req{method: rt.Method, path: unknown, as: "bob", body: body})
			assert.Equal(t, http.StatusNotFound, got.Code, "%s %s: %s", rt.Method, path, got.Body)
			assert.Equal(t, want.Body, got.Body, "%s %s", rt.Method, path)
		}
	}
	// alice's own scope holds only her user tokens, not root's for carol.
	res := e.do(req{method: "GET", path: "/self/apitokens/" + carols, as: "alice"})
	assert.Equal(t, http.StatusNotFound, res.Code)
	assert.Equal(t, before, e.snapshot())
}

func TestCrossOrigin(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	res := e.do(req{method: "POST", path: "/orgs/org_b/apitokens", as: "bob", body: map[string]any{"name": "x"},
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	require.Equal(t, http.StatusForbidden, res.Code, "%s", res.Body)
	assert.Equal(t, "cross_origin", res.JSON(t)["code"])
	assert.Equal(t, before, e.snapshot())
	res = e.do(req{method: "GET", path: "/orgs/org_b/apitokens", as: "bob",
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	require.Equal(t, http.StatusOK, res.Code, "reads are not state-changing")
	res = e.do(req{method: "POST", path: "/orgs/org_b/apitokens", as: "bob", body: map[string]any{"name": "x"},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	require.Equal(t, http.StatusCreated, res.Code, "%s", res.Body)
}

// TestBadInput: each bad request gets its 4xx, with a problem body naming
// the field where there is one, and changes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	id := e.create("alice", "/orgs/org_a/apitokens", map[string]any{"name": "ci", "roles": []string{"observer"}})["id"].(string)
	coll := "/orgs/org_a/apitokens"
	one := coll + "/" + id
	huge := `{"name":"` + strings.Repeat("x", adminapi.DefaultMaxBodyBytes) + `"}`
	json := map[string]string{"Content-Type": "application/json"}
	for _, tc := range []struct {
		name   string
		r      req
		status int
		code   string
		field  string
		rule   string
	}{
		{"unknown field", req{method: "POST", path: coll, body: map[string]any{"name": "x", "owner_id": "org_b"}}, 400, "invalid_request", "owner_id", ""},
		{"wrong type", req{method: "POST", path: coll, body: map[string]any{"name": 7}}, 400, "invalid_request", "name", ""},
		{"wrong nested type", req{method: "POST", path: coll, body: map[string]any{"name": "x", "ip_filter": map[string]any{"prefixes": "10.0.0.0/8"}}}, 400, "invalid_request", "ip_filter", ""},
		{"unknown nested field", req{method: "POST", path: coll, body: map[string]any{"name": "x", "rate_limit": map[string]any{"rate": 1, "burst": 1, "per": "s"}}}, 400, "invalid_request", "rate_limit", ""},
		{"bad access level", req{method: "POST", path: coll, body: map[string]any{"name": "x", "grants": map[string]string{"devices": "write"}}}, 400, "invalid_request", "grants", ""},
		{"all_apis and grants[*]", req{method: "POST", path: coll, body: map[string]any{"name": "x", "all_apis": "read", "grants": map[string]string{"*": "read"}}}, 400, "invalid_request", "all_apis", ""},
		{"trailing data", req{method: "POST", path: coll, body: `{"name":"x"} {}`, header: json}, 400, "invalid_request", "", ""},
		{"not an object", req{method: "POST", path: coll, body: `["x"]`, header: json}, 400, "invalid_request", "", ""},
		{"null body", req{method: "POST", path: coll, body: `null`, header: json}, 400, "invalid_request", "", ""},
		{"bad JSON", req{method: "POST", path: coll, body: `{"name":`, header: json}, 400, "invalid_request", "", ""},
		{"empty create", req{method: "POST", path: coll}, 400, "invalid_request", "", ""},
		{"text/plain", req{method: "POST", path: coll, body: `{"name":"x"}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type", "", ""},
		{"form", req{method: "POST", path: one + "/revoke", body: `a=b`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", "", ""},
		{"no content type", req{method: "PATCH", path: one, body: `{"name":"x"}`, header: map[string]string{"Content-Type": ""}}, 415, "unsupported_media_type", "", ""},
		{"other charset", req{method: "PATCH", path: one, body: `{"name":"x"}`, header: map[string]string{"Content-Type": "application/json; charset=latin1"}}, 415, "unsupported_media_type", "", ""},
		{"oversized", req{method: "POST", path: coll, body: huge, header: json}, 413, "body_too_large", "", ""},
		{"malformed lifetime", req{method: "POST", path: coll, body: map[string]any{"name": "x", "lifetime": "soon"}}, 400, "invalid_request", "lifetime", ""},
		{"lifetime not allowed", req{method: "POST", path: coll, body: map[string]any{"name": "x", "lifetime": "90d"}}, 422, "policy", "lifetime", "AllowedLifetimes"},
		{"regenerate lifetime not allowed", req{method: "POST", path: one + "/regenerate", body: map[string]any{"lifetime": "1mo"}}, 422, "policy", "lifetime", "AllowedLifetimes"},
		{"update lifetime not allowed", req{method: "PATCH", path: one, body: map[string]any{"lifetime": "none"}}, 422, "policy", "lifetime", "AllowedLifetimes"},
		{"bad grace", req{method: "POST", path: one + "/regenerate", body: map[string]any{"grace": "-1h"}}, 400, "invalid_request", "grace", ""},
		{"missing name", req{method: "POST", path: coll, body: map[string]any{"description": "x"}}, 422, "policy", "name", "Name"},
		{"null name", req{method: "PATCH", path: one, body: map[string]any{"name": nil}}, 400, "invalid_request", "name", ""},
		{"unknown role", req{method: "POST", path: coll, body: map[string]any{"name": "x", "roles": []string{"god"}}}, 422, "policy", "roles", "Roles"},
		{"escalation: role", req{method: "POST", path: coll, body: map[string]any{"name": "x", "roles": []string{"admin"}}}, 422, "policy", "roles", "NoEscalation"},
		{"escalation: access", req{method: "PATCH", path: one, body: map[string]any{"all_apis": "full"}}, 422, "policy", "grants", "NoEscalation"},
		{"unknown IP filter", req{method: "POST", path: coll, body: map[string]any{"name": "x", "ip_filter": map[string]any{"name": "home"}}}, 422, "policy", "ip_filter", "IPFilters"},
		{"bad CIDR", req{method: "POST", path: coll, body: map[string]any{"name": "x", "ip_filter": map[string]any{"prefixes": []string{"10.1.2.3/8"}}}}, 422, "policy", "ip_filter.prefixes", "IPPrefixes"},
		{"bad CIDR in update", req{method: "PATCH", path: one, body: map[string]any{"ip_filter": map[string]any{"prefixes": []string{"nope"}}}}, 422, "policy", "ip_filter.prefixes", "IPPrefixes"},
		{"revoke with fields", req{method: "POST", path: one + "/revoke", body: map[string]any{"reason": "x"}}, 400, "invalid_request", "reason", ""},
		{"bad limit", req{method: "GET", path: coll + "?limit=0"}, 400, "invalid_request", "limit", ""},
		{"huge limit", req{method: "GET", path: coll + "?limit=1001"}, 400, "invalid_request", "limit", ""},
		{"bad status", req{method: "GET", path: coll + "?status=idle"}, 400, "invalid_request", "status", ""},
		{"bad cursor", req{method: "GET", path: coll + "?cursor=zzz"}, 400, "invalid_request", "cursor", ""},
		{"repeated parameter", req{method: "GET", path: coll + "?limit=1&limit=2"}, 400, "invalid_request", "limit", ""},
		{"unknown parameter", req{method: "GET", path: coll + "?owner=org_b"}, 400, "invalid_request", "owner", ""},
		{"bad If-Match", req{method: "PATCH", path: one, body: map[string]any{"name": "x"}, header: map[string]string{"If-Match": `W/"1"`}}, 412, "precondition_failed", "", ""},
		{"expiring without within", req{method: "GET", path: coll + "/expiring"}, 400, "invalid_request", "within", ""},
		{"expiring within none", req{method: "GET", path: coll + "/expiring?within=none"}, 400, "invalid_request", "within", ""},
		{"expiring with another parameter", req{method: "GET", path: coll + "/expiring?within=7d&status=active"}, 400, "invalid_request", "status", ""},
		{"unknown ID", req{method: "GET", path: coll + "/nope"}, 404, "not_found", "", ""},
		{"unknown ID update", req{method: "PATCH", path: coll + "/nope", body: map[string]any{"name": "x"}}, 404, "not_found", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			tc.r.as = "alice"
			res := e.do(tc.r)
			require.Equal(t, tc.status, res.Code, "%s", res.Body)
			assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			p := res.JSON(t)
			assert.Equal(t, tc.code, p["code"])
			assert.Equal(t, float64(tc.status), p["status"])
			if tc.field != "" {
				assert.Equal(t, tc.field, p["field"])
			}
			if tc.rule != "" {
				assert.Equal(t, tc.rule, p["rule"])
			}
			assert.Equal(t, before, e.snapshot())
		})
	}
}

// TestLoopback runs the lifecycle over a real server, mounted under a
// prefix with WithPrefix, and with http.StripPrefix: the Location of a new
// token resolves.
func TestLoopback(t *testing.T) {
	t.Run("WithPrefix", func(t *testing.T) {
		e := newEnv(t, adminapi.WithPrefix("/api/v1"))
		mux := http.NewServeMux()
		mux.Handle("/api/v1/", e.h)
		loopback(t, e, mux)
	})
	t.Run("StripPrefix", func(t *testing.T) {
		e := newEnv(t)
		mux := http.NewServeMux()
		mux.Handle("/api/v1/", http.StripPrefix("/api/v1", e.h))
		loopback(t, e, mux)
	})
}

// loopback runs the lifecycle through mux, which serves e's handler at
// /api/v1.
func loopback(t *testing.T, e *env, mux *http.ServeMux) {
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := srv.Client()
	send := func(method, url, body string) *http.Response {
		t.Helper()
		r, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		require.NoError(t, err)
		r.AddCookie(&http.Cookie{Name: "session", Value: "bob"})
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(r)
		require.NoError(t, err)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		res.Body = io.NopCloser(bytes.NewReader(b))
		rec := r.Clone(t.Context())
		rec.URL.Path = strings.TrimPrefix(rec.URL.Path, "/api/v1")
		x := exchange{req: rec, reqBody: []byte(body), status: res.StatusCode, header: res.Header, respBody: b}
		record(x)
		validate(t, e.h, x)
		return res
	}
	res := send("POST", srv.URL+"/api/v1/orgs/org_b/apitokens", `{"name":"ci","all_apis":"read"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loc.Path, "/api/v1/orgs/org_b/apitokens/"), loc.Path)
	res = send("GET", loc.String(), "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res = send("POST", loc.String()+"/revoke", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res = send("DELETE", loc.String(), "")
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	res = send("GET", loc.String(), "")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

// TestWrongMount: a handler mounted so that no request reaches a route
// answers every request with a 404 problem that says how to mount it,
// and a right mount is unchanged.
func TestWrongMount(t *testing.T) {
	const (
		outside  = `No such route. This handler serves the paths under "/api/v1" (adminapi.WithPrefix): mount it with mux.Handle("/api/v1/", h), not behind http.StripPrefix.`
		noPrefix = `No such route. This handler serves paths relative to where it is mounted, and "/self/apitokens" is one of them: if it is mounted at "/api/v1", build it with adminapi.WithPrefix("/api/v1") and mount it with mux.Handle("/api/v1/", h).`
	)
	for _, c := range []struct {
		name   string
		opts   []adminapi.Option
		mount  func(h http.Handler) http.Handler
		path   string
		status int
		detail string
	}{
		{"WithPrefix behind StripPrefix", []adminapi.Option{adminapi.WithPrefix("/api/v1")}, stripped, "/api/v1/self/apitokens", 404, outside},
		{"WithPrefix elsewhere", []adminapi.Option{adminapi.WithPrefix("/api/v1")}, at("/api/v2/"), "/api/v2/self/apitokens", 404, outside},
		{"WithPrefix at the root", []adminapi.Option{adminapi.WithPrefix("/api/v1")}, at("/"), "/api/v1x/self/apitokens", 404, outside},
		{"neither", nil, at("/api/v1/"), "/api/v1/self/apitokens", 404, noPrefix},
		{"neither, the document", nil, at("/api/v1/"), "/api/v1/openapi.json", 404,
			`No such route. This handler serves paths relative to where it is mounted, and "/openapi.json" is one of them: if it is mounted at "/api/v1", build it with adminapi.WithPrefix("/api/v1") and mount it with mux.Handle("/api/v1/", h).`},
		{"WithPrefix, one level short", []adminapi.Option{adminapi.WithPrefix("/api")}, at("/api/"), "/api/v1/self/apitokens", 404,
			`No such route. This handler serves paths relative to where it is mounted, and "/self/apitokens" is one of them: if it is mounted at "/api/v1", build it with adminapi.WithPrefix("/api/v1") and mount it with mux.Handle("/api/v1/", h).`},
		{"WithPrefix, no such route", []adminapi.Option{adminapi.WithPrefix("/api/v1")}, at("/api/v1/"), "/api/v1/nope", 404, "No such route."},
		{"StripPrefix, no such route", nil, stripped, "/api/v1/nope", 404, "No such route."},
		{"WithPrefix", []adminapi.Option{adminapi.WithPrefix("/api/v1")}, at("/api/v1/"), "/api/v1/self/apitokens", 200, ""},
		{"StripPrefix", nil, stripped, "/api/v1/self/apitokens", 200, ""},
		{"root", nil, at("/"), "/self/apitokens", 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts...)
			// Not e.send: the paths carry the mount, which the document's
			// validation does not know.
			r := httptest.NewRequest(http.MethodGet, c.path, nil)
			r.AddCookie(&http.Cookie{Name: "session", Value: "alice"})
			w := httptest.NewRecorder()
			c.mount(e.h).ServeHTTP(w, r)
			res := resp{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
			require.Equal(t, c.status, res.Code, "%s", res.Body)
			if c.detail != "" {
				p := res.JSON(t)
				assert.Equal(t, c.detail, p["detail"])
				assert.Equal(t, "not_found", p["code"])
				assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			}
		})
	}
}

// stripped mounts h at /api/v1/ behind http.StripPrefix.
func stripped(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", h))
	return mux
}

// at mounts h at pattern as it is.
func at(pattern string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle(pattern, h)
		return mux
	}
}

func TestWithPrefixErrors(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"", "/", "api/v1", "/api/v1/", "/api//v1", "/{org}", "/a b", "/50%"} {
		_, err := adminapi.New(e.iss, managers, adminapi.WithPrefix(p))
		require.ErrorContains(t, err, "adminapi: WithPrefix: ", "WithPrefix(%q)", p)
	}
}

// TestKeySearchCatches: the suite-wide key search (TestMain) is not
// vacuous: a key in a listing, or a key response that may be cached, fails
// it.
func TestKeySearchCatches(t *testing.T) {
	x := func(method, path string, status int, cache, body string) exchange {
		return exchange{req: httptest.NewRequest(method, path, nil), status: status,
			header: http.Header{"Cache-Control": {cache}}, respBody: []byte(body)}
	}
	created := x("POST", "/orgs/o/apitokens", 201, "no-store", `{"id":"1","key":"acme_k"}`)
	require.NoError(t, keyLeaks([]exchange{created}, true))
	assert.Error(t, keyLeaks(nil, true), "no key at all")
	assert.Error(t, keyLeaks([]exchange{created, x("GET", "/orgs/o/apitokens", 200, "private, no-cache", `{"tokens":[{"key":"acme_k"}]}`)}, true))
	assert.Error(t, keyLeaks([]exchange{created, x("POST", "/orgs/o/apitokens/1/revoke", 200, "private, no-cache", `acme_k`)}, true))
	assert.Error(t, keyLeaks([]exchange{x("POST", "/orgs/o/apitokens/1/regenerate", 200, "private", `{"key":"acme_k"}`)}, true))
}

// TestHookDefaults: a Manager with no Privileges can grant nothing, and a
// hook that names nobody is answered 500 without acting.
func TestHookDefaults(t *testing.T) {
	e := newEnv(t)
	bare, err := adminapi.New(e.iss, func(r *http.Request) (*adminapi.Manager, error) {
		if c, err := r.Cookie("session"); err == nil && c.Value == "nobody" {
			return nil, nil
		}
		return &adminapi.Manager{Actor: "user:bare", May: func(adminapi.Scope) bool { return true }}, nil
	})
	require.NoError(t, err)
	res := e.send(bare, req{method: "POST", path: "/orgs/org_b/apitokens", as: "bare", body: map[string]any{"name": "x", "roles": []string{"observer"}}})
	require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%s", res.Body)
	assert.Equal(t, "NoEscalation", res.JSON(t)["rule"])
	assert.Equal(t, "roles", res.JSON(t)["field"])
	res = e.send(bare, req{method: "POST", path: "/orgs/org_b/apitokens", as: "bare", body: map[string]any{"name": "x", "all_apis": "read"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%s", res.Body)
	assert.Equal(t, "grants", res.JSON(t)["field"])
	res = e.send(bare, req{method: "GET", path: "/self/apitokens", as: "bare"})
	require.Equal(t, http.StatusForbidden, res.Code, "no UserID, no tokens of one's own")

	before := e.snapshot()
	res = e.send(bare, req{method: "POST", path: "/orgs/org_b/apitokens", as: "nobody", body: map[string]any{"name": "x"}})
	require.Equal(t, http.StatusInternalServerError, res.Code, "%s", res.Body)
	assert.Equal(t, before, e.snapshot())
}

// TestStatusUnderCurrentPolicy: a policy whose maximum lifetime shrank
// ends older tokens early; their status says so and they are frozen.
func TestStatusUnderCurrentPolicy(t *testing.T) {
	e := newEnv(t)
	id := e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": "ci", "lifetime": "12mo"})["id"].(string)
	tight := testPolicy()
	tight.MaxLifetime, tight.DefaultLifetime = apitoken.Months(3), apitoken.Months(3)
	tight.AllowedLifetimes = []apitoken.Lifetime{apitoken.Months(3)}
	iss, err := apitoken.NewIssuer(e.store, tight, apitoken.WithClock(e.clock.Now))
	require.NoError(t, err)
	h, err := adminapi.New(iss, managers, adminapi.WithPolicy(tight), adminapi.WithClock(e.clock.Now))
	require.NoError(t, err)
	one := "/orgs/org_b/apitokens/" + id
	assert.Equal(t, "active", e.send(h, req{method: "GET", path: one, as: "bob"}).JSON(t)["status"])
	e.clock.Advance(100 * 24 * time.Hour)
	assert.Equal(t, "active", e.do(req{method: "GET", path: one, as: "bob"}).JSON(t)["status"], "under the old policy")
	assert.Equal(t, "expired", e.send(h, req{method: "GET", path: one, as: "bob"}).JSON(t)["status"])
	res := e.send(h, req{method: "PATCH", path: one, as: "bob", body: map[string]any{"name": "x"}})
	require.Equal(t, http.StatusConflict, res.Code, "%s", res.Body)
	assert.Equal(t, "expired", res.JSON(t)["code"])
}
