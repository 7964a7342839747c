package adminapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/stores/memstore"
)

// Example mounts the admin API under /api/v1 for managers the host
// recognises by a session cookie, creates a token and shows a policy
// violation naming its rule and field.
func Example() {
	store := memstore.New()
	policy := apitoken.Policy{
		Prefix:           "acme",
		AllowedLifetimes: []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)},
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
		},
	}
	iss, err := apitoken.NewIssuer(store, policy)
	if err != nil {
		panic(err)
	}
	sessions := map[string]string{"s3ss10n": "42"} // the host's sessions: cookie → user ID
	isTokenManager := func(user, org string) bool { return user == "42" && org == "org_1" }

	// README: Admin API
	admin, err := adminapi.New(iss, func(r *http.Request) (*adminapi.Manager, error) {
		c, err := r.Cookie("session")
		if err != nil || sessions[c.Value] == "" {
			return nil, adminapi.ErrUnauthenticated // 401
		}
		user := sessions[c.Value]
		return &adminapi.Manager{
			Actor:      "user:" + user,                                   // created_by and audit events
			UserID:     user,                                             // owner of /self/apitokens
			Privileges: &apitoken.Principal{Roles: []string{"observer"}}, // no token may exceed them
			May: func(s adminapi.Scope) bool { // deny by default
				return s.Self || s.Owner.Kind == apitoken.KindOrg && isTokenManager(user, s.Owner.ID)
			},
		}, nil
	}, adminapi.WithPolicy(policy), adminapi.WithPrefix("/api/v1"))
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", admin) // as the console is mounted (adminui.WithPrefix)
	// end of the README snippet
	if err != nil {
		panic(err)
	}

	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.AddCookie(&http.Cookie{Name: "session", Value: "s3ss10n"})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	w := post("/api/v1/orgs/org_1/apitokens", `{"name": "ci", "roles": ["observer"], "lifetime": "6mo"}`)
	var created struct{ Key, Status string }
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), strings.HasPrefix(created.Key, "acme_"), created.Status)

	w = post("/api/v1/orgs/org_1/apitokens", `{"name": "ci", "lifetime": "90d"}`)
	var problem struct{ Code, Rule, Field string }
	_ = json.Unmarshal(w.Body.Bytes(), &problem)
	fmt.Println(w.Code, w.Header().Get("Content-Type"), problem.Code, problem.Rule, problem.Field)

	w = post("/api/v1/orgs/org_2/apitokens", `{"name": "ci"}`)
	fmt.Println(w.Code)
	// Output:
	// 201 no-store true active
	// 422 application/problem+json policy AllowedLifetimes lifetime
	// 403
}

// Example_perOrgManager shows a manager whose privileges depend on the
// scope. The authorization hook runs after routing, so it can read the org
// of the request with r.PathValue("org") and load the manager's privileges
// in that org alone: here Ana administers org_a's tokens, only observes in
// org_b, and has nothing to do with org_c.
func Example_perOrgManager() {
	policy := apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"admin":    {Grants: apitoken.Grants{"devices": apitoken.AccessFull}},
		},
	}
	iss, err := apitoken.NewIssuer(memstore.New(), policy)
	if err != nil {
		panic(err)
	}
	roles := map[string]map[string][]string{ // the host's memberships: user → org → roles there
		"ana": {"org_a": {"admin", "observer"}, "org_b": {"observer"}},
	}
	admin, err := adminapi.New(iss, func(r *http.Request) (*adminapi.Manager, error) {
		user := r.Header.Get("X-User") // the host's own authentication, simplified
		if user == "" {
			return nil, adminapi.ErrUnauthenticated
		}
		org := r.PathValue("org") // "" outside /orgs/{org}/
		held := roles[user][org]
		return &adminapi.Manager{
			Actor:      "user:" + user,
			UserID:     user,
			Privileges: &apitoken.Principal{Roles: held}, // what the manager holds in this org
			May: func(s adminapi.Scope) bool { // only the org whose privileges these are
				return len(held) > 0 && s.Owner == apitoken.OrgOwner(org)
			},
		}, nil
	}, adminapi.WithPolicy(policy), adminapi.WithPrefix("/api/v1"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", admin)

	create := func(org, role string) {
		r := httptest.NewRequest("POST", "/api/v1/orgs/"+org+"/apitokens", strings.NewReader(`{"name": "ci", "roles": ["`+role+`"]}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-User", "ana")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var problem struct{ Rule string }
		_ = json.Unmarshal(w.Body.Bytes(), &problem)
		fmt.Println(strings.TrimSpace(fmt.Sprint(org, " ", role, ": ", w.Code, " ", problem.Rule)))
	}
	create("org_a", "admin")
	create("org_b", "observer")
	create("org_b", "admin")
	create("org_c", "observer")
	// Output:
	// org_a admin: 201
	// org_b observer: 201
	// org_b admin: 422 NoEscalation
	// org_c observer: 403
}
