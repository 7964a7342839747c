package adminapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

// TestNoEscalationEveryRoute: the attacks of issue 20 over HTTP. alice
// manages org_a as an observer; the operator issued org_a's admin token.
// Before, alice's regenerate returned a key with roles [admin] and her
// reveal showed the admin token's key; now both are refused (422, rule
// NoEscalation), she gets no key and nothing changes. Her own kind of token
// she may still regenerate and reveal.
func TestNoEscalationEveryRoute(t *testing.T) {
	e := newEnv(t)
	admin, stored, err := e.iss.Issue(context.Background(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_a", Name: "admin", Roles: []string{"admin"}})
	require.NoError(t, err)
	before := e.snapshot()
	for _, action := range []string{"regenerate", "reveal"} {
		res := e.do(req{method: "POST", path: "/orgs/org_a/apitokens/" + stored.ID + "/" + action, as: "alice", body: map[string]any{}})
		require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%s: the status (the body may hold a key)", action)
		body := res.JSON(t)
		assert.Equal(t, "NoEscalation", body["rule"], action)
		assert.Equal(t, "roles", body["field"], action)
		assert.NotContains(t, body, "key", action)
		assert.NotContains(t, string(res.Body), admin.Reveal(), action)
	}
	assert.Equal(t, before, e.snapshot(), "nothing changed")

	own := e.create("alice", "/orgs/org_a/apitokens", map[string]any{"name": "mine", "roles": []string{"observer"}})
	for _, action := range []string{"regenerate", "reveal"} {
		res := e.do(req{method: "POST", path: "/orgs/org_a/apitokens/" + own["id"].(string) + "/" + action, as: "alice", body: map[string]any{}})
		require.Equal(t, http.StatusOK, res.Code, "%s: %s", action, res.Body)
	}

	// Revoke and delete stay open to any manager of the scope: whoever sees
	// a leaked token must be able to kill it.
	res := e.do(req{method: "POST", path: "/orgs/org_a/apitokens/" + stored.ID + "/revoke", as: "alice"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
}

// TestRateLimitIsAPrivilege: the attack of issue 20. Where the policy
// allows 10 requests at once, an observer-level manager creates an org
// token with no limit, or with {1e300, 2e9}: before, both were accepted and
// 200 of 200 requests passed; now both are 422 (rule MaxRateLimit, field
// rate_limit), and so is an update to them.
func TestRateLimitIsAPrivilege(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: 10, Burst: 10}
	e := newEnvWith(t, pol)
	v, err := apitoken.NewValidator(e.store, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter()), apitoken.WithClock(e.clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { v.Close(context.Background()) })
	mine := e.create("alice", "/orgs/org_a/apitokens", map[string]any{"name": "mine", "roles": []string{"observer"}})

	for _, limit := range []map[string]any{{"rate": 0, "burst": 0}, {"rate": 1e300, "burst": 2e9}} {
		res := e.do(req{method: "POST", path: "/orgs/org_a/apitokens", as: "alice",
			body: map[string]any{"name": "flood", "roles": []string{"observer"}, "rate_limit": limit}})
		if res.Code == http.StatusCreated { // the old behaviour: measure what it gives
			key := res.JSON(t)["key"].(string)
			allowed := 0
			for range 200 {
				if _, err := v.Validate(context.Background(), key, apitoken.Request{Org: "org_a"}); err == nil {
					allowed++
				}
			}
			t.Errorf("rate_limit %v accepted: %d of 200 requests passed where the policy allows 10", limit, allowed)
			continue
		}
		require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%v: %s", limit, res.Body)
		assert.Equal(t, "MaxRateLimit", res.JSON(t)["rule"])
		assert.Equal(t, "rate_limit", res.JSON(t)["field"])

		res = e.do(req{method: "PATCH", path: "/orgs/org_a/apitokens/" + mine["id"].(string), as: "alice",
			body: map[string]any{"rate_limit": limit}})
		require.Equal(t, http.StatusUnprocessableEntity, res.Code, "%v: %s", limit, res.Body)
	}
	res := e.do(req{method: "POST", path: "/orgs/org_a/apitokens", as: "alice",
		body: map[string]any{"name": "slow", "roles": []string{"observer"}, "rate_limit": map[string]any{"rate": 1, "burst": 5}}})
	require.Equal(t, http.StatusCreated, res.Code, "a lower limit is fine: %s", res.Body)
}

// TestStatusFiltersBeforePaging: limit=1&status=active never answers an
// empty page with a cursor while an active token exists (before, the first
// token being revoked, it did).
func TestStatusFiltersBeforePaging(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for _, name := range []string{"a", "b", "c", "d"} {
		ids = append(ids, e.create("bob", "/orgs/org_b/apitokens", map[string]any{"name": name})["id"].(string))
	}
	for _, id := range ids[:3] {
		require.NoError(t, e.iss.Revoke(context.Background(), id))
	}
	res := e.do(req{method: "GET", path: "/orgs/org_b/apitokens?limit=1&status=active", as: "bob"})
	require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
	body := res.JSON(t)
	toks := body["tokens"].([]any)
	require.Len(t, toks, 1)
	assert.Equal(t, ids[3], toks[0].(map[string]any)["id"])

	res = e.do(req{method: "GET", path: "/orgs/org_b/apitokens?limit=2&status=revoked", as: "bob"})
	body = res.JSON(t)
	require.Len(t, body["tokens"].([]any), 2)
	res = e.do(req{method: "GET", path: "/orgs/org_b/apitokens?limit=2&status=revoked&cursor=" + body["next_cursor"].(string), as: "bob"})
	body = res.JSON(t)
	require.Len(t, body["tokens"].([]any), 1, "the third revoked token")
}
