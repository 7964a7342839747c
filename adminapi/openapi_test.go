package adminapi_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/httpauth"
)

// spec is the embedded document, parsed once, and the validator over it.
var spec struct {
	once  sync.Once
	mu    sync.Mutex // the validator is used by one exchange at a time
	doc   libopenapi.Document
	v     validator.Validator
	err   error
	cover map[string]bool // "METHOD /pattern" → a 2xx exchange was validated
}

func loadSpec(t testing.TB) {
	t.Helper()
	spec.once.Do(func() {
		spec.doc, spec.err = libopenapi.NewDocument(adminapi.OpenAPI())
		if spec.err != nil {
			return
		}
		var errs []error
		spec.v, errs = validator.NewValidator(spec.doc)
		if len(errs) > 0 {
			spec.err = fmt.Errorf("%v", errs)
			return
		}
		spec.cover = map[string]bool{}
	})
	require.NoError(t, spec.err)
}

// documentedRoutes returns "METHOD /path" for every operation of the
// document.
func documentedRoutes(t testing.TB) []string {
	t.Helper()
	loadSpec(t)
	m, err := spec.doc.BuildV3Model()
	require.NoError(t, err)
	var out []string
	for path, item := range m.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func servedRoutes(h *adminapi.Handler) []string {
	var out []string
	for _, r := range h.Routes() {
		out = append(out, r.Method+" "+r.Pattern)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIRoutes: every route the handler serves is in the document,
// and the reverse.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t)
	assert.Equal(t, documentedRoutes(t), servedRoutes(e.h))
}

func TestOpenAPIDocumentValid(t *testing.T) {
	loadSpec(t)
	ok, errs := spec.v.ValidateDocument()
	for _, err := range errs {
		t.Errorf("%s: %s", err.Message, err.Reason)
	}
	assert.True(t, ok)
}

// routeOf returns the served route ("METHOD /pattern") a request matches,
// or "".
func routeOf(h *adminapi.Handler, method, path string) string {
	segs := strings.Split(path, "/")
	best := ""
	for _, r := range h.Routes() {
		if r.Method != method {
			continue
		}
		ps := strings.Split(r.Pattern, "/")
		if len(ps) != len(segs) {
			continue
		}
		match, literal := true, 0
		for i := range ps {
			if strings.HasPrefix(ps[i], "{") {
				continue
			}
			if ps[i] != segs[i] {
				match = false
				break
			}
			literal++
		}
		if match && (best == "" || literal > strings.Count(best, "/")-strings.Count(best, "{")) {
			best = r.Method + " " + r.Pattern
		}
	}
	return best
}

// validate checks one exchange against the document: a request the
// handler accepted (2xx) must be valid, a request the document rejects
// must have been refused (4xx), and every response must be valid. An
// exchange on no documented route (an unknown path, a method the path
// does not serve) must be a problem.
func validate(t testing.TB, h *adminapi.Handler, x exchange) {
	t.Helper()
	loadSpec(t)
	route := routeOf(h, x.req.Method, x.req.URL.Path)
	if route == "" {
		assert.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, x.status, "%s %s", x.req.Method, x.req.URL.Path)
		assert.Equal(t, "application/problem+json", x.header.Get("Content-Type"))
		return
	}
	spec.mu.Lock()
	defer spec.mu.Unlock()
	newReq := func() *http.Request {
		r := x.req.Clone(t.Context())
		r.Body = io.NopCloser(bytes.NewReader(x.reqBody))
		r.ContentLength = int64(len(x.reqBody))
		return r
	}
	reqOK, reqErrs := spec.v.ValidateHttpRequest(newReq())
	switch {
	case x.status < 300 && !reqOK:
		t.Errorf("%s %s was accepted (%d) but the document rejects it: %s", x.req.Method, x.req.URL, x.status, describe(reqErrs))
	case !reqOK && (x.status < 400 || x.status >= 500):
		t.Errorf("%s %s breaks the document but got %d: %s", x.req.Method, x.req.URL, x.status, describe(reqErrs))
	}
	res := &http.Response{StatusCode: x.status, Header: x.header.Clone(), Body: io.NopCloser(bytes.NewReader(x.respBody)),
		Request: newReq(), ContentLength: int64(len(x.respBody))}
	if ok, errs := spec.v.ValidateHttpResponse(newReq(), res); !ok {
		t.Errorf("the response to %s %s (%d) breaks the document: %s\n%s", x.req.Method, x.req.URL, x.status, describe(errs), x.respBody)
	}
	if x.status < 300 {
		spec.cover[route] = true
	}
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n\t" + e.Error())
	}
	return b.String()
}

// fullRun reports whether the whole suite runs (no -run filter), so that
// suite-wide checks apply.
func fullRun() bool {
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() == ""
}

// checkCoverage: every documented operation got a validated 2xx answer.
func checkCoverage() error {
	if !fullRun() || spec.cover == nil {
		return nil
	}
	var missing []string
	m, err := spec.doc.BuildV3Model()
	if err != nil {
		return err
	}
	for path, item := range m.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			if r := strings.ToUpper(method) + " " + path; !spec.cover[r] {
				missing = append(missing, r)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no successful exchange validated for %s", strings.Join(missing, ", "))
	}
	return nil
}

// TestOpenAPIValidatorCatches: the validation is not vacuous: a token
// response with a field the document does not have (a hash), a request
// with an unknown field, an undocumented status, a 429 without
// Retry-After and an unlisted problem code all fail it.
func TestOpenAPIValidatorCatches(t *testing.T) {
	loadSpec(t)
	get, err := http.NewRequest("GET", "/orgs/org_a/apitokens/x", nil)
	require.NoError(t, err)
	body := `{"id":"x","kind":"org","owner_id":"org_a","name":"n","hint":"h","created_at":"2026-01-01T00:00:00Z",` +
		`"issued_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","version":1,"status":"active"%s}`
	respond := func(status int, b string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(b)), Request: get}
	}
	spec.mu.Lock()
	defer spec.mu.Unlock()
	ok, errs := spec.v.ValidateHttpResponse(get, respond(200, fmt.Sprintf(body, "")))
	require.True(t, ok, "%s", describe(errs))
	ok, _ = spec.v.ValidateHttpResponse(get, respond(200, fmt.Sprintf(body, `,"hash":"abc"`)))
	assert.False(t, ok, "a hash in a token")
	ok, _ = spec.v.ValidateHttpResponse(get, respond(200, fmt.Sprintf(body, `,"key":"acme_x"`)))
	assert.False(t, ok, "a key in a GET response")
	ok, _ = spec.v.ValidateHttpResponse(get, respond(418, `{}`))
	assert.False(t, ok, "an undocumented status")
	limited := func(code, retryAfter string) *http.Response {
		res := respond(429, `{"type":"about:blank","title":"Too Many Requests","status":429,"code":"`+code+`"}`)
		res.Header.Set("Content-Type", "application/problem+json")
		if retryAfter != "" {
			res.Header.Set("Retry-After", retryAfter)
		}
		return res
	}
	ok, errs = spec.v.ValidateHttpResponse(get, limited("rate_limited", "60"))
	require.True(t, ok, "%s", describe(errs))
	ok, _ = spec.v.ValidateHttpResponse(get, limited("rate_limited", ""))
	assert.False(t, ok, "a 429 without Retry-After")
	ok, _ = spec.v.ValidateHttpResponse(get, limited("slow_down", "60"))
	assert.False(t, ok, "a problem code the document does not list")
	post, err := http.NewRequest("POST", "/orgs/org_a/apitokens", strings.NewReader(`{"name":"x","owner_id":"org_b"}`))
	require.NoError(t, err)
	post.Header.Set("Content-Type", "application/json")
	post.AddCookie(&http.Cookie{Name: "session", Value: "bob"})
	ok, _ = spec.v.ValidateHttpRequest(post)
	assert.False(t, ok, "an unknown request field")
}

// TestOpenAPIMiddlewareResponses: behind package httpauth's middleware, as
// examples/server mounts the API, the middleware's own answers (400, 401,
// 403, 429 for a spent rate limit and for failed authentications, 503)
// and the API's answers through it validate against the document, and
// the middleware's problems carry the codes the document lists.
func TestOpenAPIMiddlewareResponses(t *testing.T) {
	e := newEnv(t)
	ctx := apitoken.WithActor(context.Background(), "test")
	h, err := adminapi.New(e.iss, func(r *http.Request) (*adminapi.Manager, error) {
		p, ok := httpauth.PrincipalFrom(r.Context())
		if !ok {
			return nil, adminapi.ErrUnauthenticated
		}
		return &adminapi.Manager{Actor: "token:" + p.TokenID, Privileges: p,
			May: func(s adminapi.Scope) bool { return s.Owner == apitoken.OrgOwner("org_a") }}, nil
	}, adminapi.WithPolicy(testPolicy()), adminapi.WithClock(e.clock.Now))
	require.NoError(t, err)
	// front is h behind the middleware, over a Validator of the store with
	// the policy pol; it returns the Validator for Close.
	front := func(pol apitoken.Policy, opts ...httpauth.Option) (http.Handler, *apitoken.Validator) {
		v, err := apitoken.NewValidator(e.store, pol, apitoken.WithClock(e.clock.Now),
			apitoken.WithLimiter(apitoken.NewLocalLimiter()), apitoken.WithSingleTenant("org_a"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close(context.Background()) }) // t.Context() is already cancelled here
		opts = append([]httpauth.Option{httpauth.WithAPIName("apitokens"), httpauth.WithRealm("admin"),
			httpauth.WithClock(e.clock.Now), httpauth.WithXRateLimitHeaders()}, opts...)
		auth, err := httpauth.New(v, opts...)
		require.NoError(t, err)
		return auth.Wrap(h), v
	}
	issue := func(name string, spec apitoken.Spec) string {
		spec.Kind, spec.OrgID, spec.Name = apitoken.KindOrg, "org_a", name
		secret, _, err := e.iss.Issue(ctx, spec)
		require.NoError(t, err)
		return "Bearer " + secret.Reveal()
	}
	admin := issue("admin", apitoken.Spec{Roles: []string{"admin"}})
	reader := issue("reader", apitoken.Spec{Grants: apitoken.Grants{"apitokens": apitoken.AccessRead}})

	open, _ := front(testPolicy(), httpauth.WithFailureLimit(apitoken.Limit{}))
	limited := testPolicy()
	limited.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}
	tight, _ := front(limited)
	throttled, _ := front(testPolicy(), httpauth.WithFailureLimit(apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1}))
	closed, v := front(testPolicy())
	require.NoError(t, v.Close(context.Background()))

	created := e.send(open, req{method: "POST", path: "/orgs/org_a/apitokens", body: map[string]any{"name": "ci"},
		header: map[string]string{"Authorization": admin}})
	require.Equal(t, http.StatusCreated, created.Code, "%s", created.Body)
	one := "/orgs/org_a/apitokens/" + created.JSON(t)["id"].(string)
	forged := "Bearer acme_" + strings.Repeat("x", 40)
	tests := []struct {
		name      string
		h         http.Handler
		method    string
		path      string
		auth      string
		status    int
		code      string
		challenge string
	}{
		{"through the middleware", open, "GET", one, admin, 200, "", ""},
		{"no token", open, "GET", one, "", 401, "unauthenticated", `Bearer realm="admin"`},
		{"unknown token", open, "GET", one, forged, 401, "invalid_token", `Bearer realm="admin", error="invalid_token"`},
		{"malformed credentials", open, "GET", one, "Bearer", 400, "invalid_request", `Bearer realm="admin", error="invalid_request"`},
		{"read-only token on a write", open, "DELETE", one, reader, 403, "insufficient_scope",
			`Bearer realm="admin", error="insufficient_scope", scope="apitokens:full"`},
		{"within the rate limit", tight, "GET", "/orgs/org_a/apitokens", reader, 200, "", ""},
		{"rate limit spent", tight, "GET", "/orgs/org_a/apitokens", reader, 429, "rate_limited", ""},
		{"first failed authentication", throttled, "GET", "/policy", forged, 401, "invalid_token", `Bearer realm="admin", error="invalid_token"`},
		{"too many failed authentications", throttled, "GET", "/policy", forged, 429, "rate_limited", ""},
		{"validator closed", closed, "POST", one + "/revoke", admin, 503, "unavailable", ""},
	}
	for _, tc := range tests { // in order: the limits count
		r := req{method: tc.method, path: tc.path, header: map[string]string{"Authorization": tc.auth}}
		got := e.send(tc.h, r) // validates the exchange against the document
		require.Equal(t, tc.status, got.Code, "%s: %s", tc.name, got.Body)
		assert.Equal(t, tc.challenge, got.Header.Get("WWW-Authenticate"), tc.name)
		if tc.status < 300 {
			continue
		}
		assert.Equal(t, tc.code, got.JSON(t)["code"], tc.name)
		switch tc.name {
		case "rate limit spent":
			assert.Equal(t, "3600", got.Header.Get("Retry-After"))
			assert.Equal(t, `"default";r=0;t=3600`, got.Header.Get("RateLimit"))
			assert.Equal(t, `"default";q=1;w=3600`, got.Header.Get("RateLimit-Policy"))
		case "too many failed authentications":
			assert.Equal(t, "3600", got.Header.Get("Retry-After"))
			assert.Empty(t, got.Header.Get("RateLimit"), "a throttled client learns no token's budget")
		case "validator closed":
			assert.NotEmpty(t, got.Header.Get("Retry-After"))
		}
	}
}
