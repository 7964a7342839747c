package apitoken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// mwEnv is an env with a protected handler that records what it saw.
type mwEnv struct {
	*env
	handler  http.Handler
	calls    atomic.Int64
	lastSeen atomic.Pointer[apitoken.Principal]
	outcomes chan apitoken.Outcome
}

func newMW(t testing.TB, pol apitoken.Policy, mopts ...apitoken.MiddlewareOption) *mwEnv {
	t.Helper()
	m := &mwEnv{env: newEnv(t, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter())), outcomes: make(chan apitoken.Outcome, 100)}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		p, ok := apitoken.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", 500)
			return
		}
		m.lastSeen.Store(p)
		io.WriteString(w, "hello "+p.Name)
	})
	opts := append([]apitoken.MiddlewareOption{
		apitoken.WithObserver(func(_ *http.Request, o apitoken.Outcome) {
			select {
			case m.outcomes <- o:
			default:
			}
		}),
		apitoken.WithOrg(func(r *http.Request) string { return r.Header.Get("X-Org") }),
	}, mopts...)
	mux := http.NewServeMux()
	mux.Handle("/devices/{id}", apitoken.Middleware(m.v, opts...)(next))
	m.handler = mux
	return m
}

func (m *mwEnv) do(method, auth string, mod ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/devices/42", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("X-Org", "org_1")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, f := range mod {
		f(r)
	}
	w := httptest.NewRecorder()
	m.handler.ServeHTTP(w, r)
	return w
}

func challenge(w *httptest.ResponseRecorder) string { return w.Header().Get("WWW-Authenticate") }

func TestMiddlewareResponses(t *testing.T) {
	pol := testPolicy()
	m := newMW(t, pol, apitoken.WithAPIKeyHeader(""))
	tok, _ := m.issue(t, orgSpec())
	long := "acme_" + strings.Repeat("a", 9*1024)
	other, _ := m.issue(t, orgSpec())
	tests := []struct {
		name      string
		method    string
		auth      string
		mod       func(*http.Request)
		status    int
		challenge string
	}{
		{"ok", "GET", "Bearer " + tok, nil, 200, ""},
		{"lowercase scheme", "GET", "bearer " + tok, nil, 200, ""},
		{"upper-case scheme", "GET", "BEARER " + tok, nil, 200, ""},
		{"trailing whitespace", "GET", "Bearer " + tok + " \t", nil, 200, ""},
		{"two spaces", "GET", "Bearer  " + tok, nil, 200, ""},
		{"API key header", "GET", "", func(r *http.Request) { r.Header.Set("X-API-Key", tok) }, 200, ""},
		{"same token twice", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Set("X-API-Key", tok) }, 200, ""},
		{"no credentials", "GET", "", nil, 401, `Bearer realm="api"`},
		{"other scheme", "GET", "Basic dXNlcjpwYXNz", nil, 401, `Bearer realm="api"`},
		{"bearer without token", "GET", "Bearer", nil, 400, `Bearer realm="api", error="invalid_request"`},
		{"bearer and spaces", "GET", "Bearer    ", nil, 400, `Bearer realm="api", error="invalid_request"`},
		{"two words", "GET", "Bearer " + tok + " extra", nil, 400, `Bearer realm="api", error="invalid_request"`},
		{"two different tokens", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Set("X-API-Key", other) }, 400, `Bearer realm="api", error="invalid_request"`},
		{"two Authorization headers", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Add("Authorization", "Bearer acme_other") }, 400, `Bearer realm="api", error="invalid_request"`},
		{"non-ASCII token", "GET", "Bearer acme_" + strings.Repeat("é", 18), nil, 401, `Bearer realm="api", error="invalid_token"`},
		{"9 KiB token", "GET", "Bearer " + long, nil, 401, `Bearer realm="api", error="invalid_token"`},
		{"query token off by default", "GET", "", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, 401, `Bearer realm="api"`},
		{"write needs full access", "POST", "Bearer " + tok, nil, 403, `Bearer realm="api", error="insufficient_scope"`},
		{"DELETE needs full access", "DELETE", "Bearer " + tok, nil, 403, `Bearer realm="api", error="insufficient_scope"`},
		{"HEAD is a read", "HEAD", "Bearer " + tok, nil, 200, ""},
		{"OPTIONS is a read", "OPTIONS", "Bearer " + tok, nil, 200, ""},
		{"other org", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Set("X-Org", "org_2") }, 401, `Bearer realm="api", error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := m.calls.Load()
			mod := []func(*http.Request){}
			if tc.mod != nil {
				mod = append(mod, tc.mod)
			}
			w := m.do(tc.method, tc.auth, mod...)
			if w.Code != tc.status || challenge(w) != tc.challenge {
				t.Fatalf("%s %q: %d %q, want %d %q", tc.method, tc.auth, w.Code, challenge(w), tc.status, tc.challenge)
			}
			called := m.calls.Load() > before
			if called != (tc.status == 200) {
				t.Errorf("handler called = %v for status %d", called, tc.status)
			}
			if tc.status != 200 {
				checkProblem(t, w, tc.status)
				if strings.Contains(w.Body.String(), tok) {
					t.Error("response body holds the token")
				}
			}
		})
	}
}

func checkProblem(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != status || p.Title == "" || p.Type == "" {
		t.Errorf("problem body %q: %+v, %v; want status %d", w.Body.String(), p, err, status)
	}
}

// TestMiddlewareNoOracle: unknown, bad-checksum, expired, revoked, idle and
// other-tenant tokens get byte-identical responses; only the observer learns
// why.
func TestMiddlewareNoOracle(t *testing.T) {
	m := newMW(t, testPolicy())
	ctx := context.Background()
	short := orgSpec()
	short.Lifetime = apitoken.Minutes(1)
	expired, _ := m.issue(t, short)
	revoked, rt := m.issue(t, orgSpec())
	must(m.iss.Revoke(ctx, rt.ID))
	foreign := orgSpec()
	foreign.OrgID = "org_9"
	other, _ := m.issue(t, foreign)
	good, _ := m.issue(t, orgSpec())
	last := byte('a')
	if good[len(good)-1] == 'a' {
		last = 'b'
	}
	badSum := good[:len(good)-1] + string(last)
	m.clock.Advance(2 * time.Minute)
	deleted, dt := m.issue(t, orgSpec())
	must(m.iss.Delete(ctx, dt.ID))

	type resp struct {
		code   int
		header http.Header
		body   string
	}
	var first *resp
	for name, tok := range map[string]string{"expired": expired, "revoked": revoked, "other tenant": other, "bad checksum": badSum, "deleted": deleted} {
		for len(m.outcomes) > 0 {
			<-m.outcomes
		}
		w := m.do("GET", "Bearer "+tok)
		got := &resp{w.Code, w.Header(), w.Body.String()}
		if got.code != 401 {
			t.Errorf("%s: status %d, want 401", name, got.code)
		}
		if first == nil {
			first = got
		} else if got.code != first.code || got.body != first.body || !equalHeaders(got.header, first.header) {
			t.Errorf("%s: response %+v differs from %+v", name, got, first)
		}
		o := <-m.outcomes
		if o.Err == nil || o.Status != 401 {
			t.Errorf("%s: observer saw %+v, want the reason", name, o)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

func TestMiddlewareForbiddenAndLimits(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 2}
	m := newMW(t, pol, apitoken.WithXRateLimitHeaders())
	spec := orgSpec()
	spec.IPFilter = "office"
	tok, _ := m.issue(t, spec)

	w := m.do("GET", "Bearer "+tok, func(r *http.Request) { r.RemoteAddr = "192.0.2.1:1" })
	if w.Code != 403 || challenge(w) != `Bearer realm="api", error="insufficient_scope"` {
		t.Errorf("outside IP filter: %d %q", w.Code, challenge(w))
	}
	w = m.do("GET", "Bearer "+tok, func(r *http.Request) { r.RemoteAddr = "[::ffff:10.0.0.1]:1" })
	if w.Code != 200 {
		t.Errorf("IPv4-mapped peer inside 10.0.0.0/8: %d, want 200", w.Code)
	}
	if got := w.Header().Get("RateLimit"); got != `"default";r=1;t=60` {
		t.Errorf("RateLimit = %q, want %q", got, `"default";r=1;t=60`)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != `"default";q=2;w=120` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if w.Header().Get("X-RateLimit-Remaining") != "1" || w.Header().Get("X-RateLimit-Limit") != "2" || w.Header().Get("X-RateLimit-Reset") != "60" {
		t.Errorf("X-RateLimit headers = %v", w.Header())
	}
	m.do("GET", "Bearer "+tok) // second of the burst
	before := m.calls.Load()
	w = m.do("GET", "Bearer "+tok)
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" || w.Header().Get("RateLimit") != `"default";r=0;t=120` {
		t.Errorf("over the limit: %d Retry-After %q RateLimit %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("RateLimit"))
	}
	checkProblem(t, w, 429)
	if m.calls.Load() != before {
		t.Error("handler called on 429")
	}
}

func TestMiddlewareStoreOutage(t *testing.T) {
	m := newMW(t, testPolicy())
	tok, _ := m.issue(t, orgSpec())
	m.store.down.Store(true)
	w := m.do("GET", "Bearer "+tok)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || m.calls.Load() != 0 {
		t.Fatalf("store down: %d Retry-After %q, handler calls %d; want 503, Retry-After, 0", w.Code, w.Header().Get("Retry-After"), m.calls.Load())
	}
	checkProblem(t, w, 503)
	m.store.down.Store(false)
	if w := m.do("GET", "Bearer "+tok); w.Code != 200 {
		t.Errorf("store back: %d, want 200", w.Code)
	}
}

func TestMiddlewarePrincipalAndAPI(t *testing.T) {
	m := newMW(t, testPolicy())
	tok, rec := m.issue(t, orgSpec())
	// The API name comes from the matched pattern "/devices/{id}".
	w := m.do("GET", "Bearer "+tok)
	if w.Code != 200 || w.Body.String() != "hello ci" {
		t.Fatalf("GET: %d %q", w.Code, w.Body.String())
	}
	if p := m.lastSeen.Load(); p == nil || p.TokenID != rec.ID {
		t.Errorf("handler principal = %+v, want token %s", p, rec.ID)
	}
	o := <-m.outcomes
	if o.API != "devices" || o.Access != apitoken.AccessRead || o.ClientIP != officeIP || o.Principal == nil {
		t.Errorf("outcome = %+v", o)
	}
	if _, ok := apitoken.PrincipalFrom(context.Background()); ok {
		t.Error("PrincipalFrom(empty context) = ok")
	}
}

// TestMiddlewareHandlerContext checks the context the handler gets: it
// carries the principal through contexts derived from it, keeps the
// request's own values and cancellation, and prints no principal field.
func TestMiddlewareHandlerContext(t *testing.T) {
	type hostKey struct{}
	env := newEnv(t, testPolicy())
	spec := orgSpec()
	spec.Name = "deploy-bot-7"
	tok, rec := env.issue(t, spec)
	var got struct {
		p, derived *apitoken.Principal
		host       any
		err        error
		printed    string
	}
	h := apitoken.Middleware(env.v)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		got.p, _ = apitoken.PrincipalFrom(ctx)
		derived, cancel := context.WithCancel(context.WithValue(ctx, hostKey{}, "inner"))
		defer cancel()
		got.derived, _ = apitoken.PrincipalFrom(derived)
		got.host = ctx.Value(hostKey{})
		got.err = derived.Err()
		got.printed = fmt.Sprint(ctx)
	}))
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), hostKey{}, "outer"))
	cancel() // the client went away: the handler must see it
	r := httptest.NewRequestWithContext(parent, "GET", "/devices/1", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.p == nil || got.p.TokenID != rec.ID || got.derived != got.p {
		t.Fatalf("PrincipalFrom: handler context %+v, derived %+v; want token %s in both", got.p, got.derived, rec.ID)
	}
	if got.host != "outer" {
		t.Errorf("request context value = %v, want outer", got.host)
	}
	if !errors.Is(got.err, context.Canceled) {
		t.Errorf("derived context error = %v, want canceled with the request", got.err)
	}
	if strings.Contains(got.printed, rec.ID) || strings.Contains(got.printed, rec.Name) || !strings.Contains(got.printed, "apitoken.Principal") {
		t.Errorf("fmt of the handler context = %q: want the type named, no principal fields", got.printed)
	}
}

func TestMiddlewareOptions(t *testing.T) {
	var handled []int
	m := newMW(t, testPolicy(),
		apitoken.WithQueryParam("access_token"),
		apitoken.WithRealm(`my "api"`),
		apitoken.WithAPIName("billing"),
	)
	tok, _ := m.issue(t, orgSpec())
	if w := m.do("GET", "", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }); w.Code != 403 {
		t.Errorf("query token for billing: %d, want 403 (no billing grant)", w.Code)
	}
	if w := m.do("GET", ""); challenge(w) != `Bearer realm="my \"api\""` {
		t.Errorf("challenge = %q", challenge(w))
	}
	custom := newMW(t, testPolicy(),
		apitoken.WithoutBearer(),
		apitoken.WithExtractor(func(r *http.Request) (string, bool) {
			c, err := r.Cookie("tok")
			if err != nil {
				return "", false
			}
			return c.Value, true
		}),
		apitoken.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, f *apitoken.Failure) {
			handled = append(handled, f.Status)
			w.WriteHeader(418)
		}),
	)
	tok2, _ := custom.issue(t, orgSpec())
	if w := custom.do("GET", "Bearer "+tok2); w.Code != 418 {
		t.Errorf("bearer ignored: %d, want the custom 418", w.Code)
	}
	if w := custom.do("GET", "", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "tok", Value: tok2}) }); w.Code != 200 {
		t.Errorf("cookie extractor: %d, want 200", w.Code)
	}
	if len(handled) != 1 || handled[0] != 401 {
		t.Errorf("custom error handler saw %v, want [401]", handled)
	}
}

func TestRequireRoleAndAccess(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	e := newEnv(t, testPolicy())
	tok, _ := e.issue(t, orgSpec())
	p, err := e.v.Validate(context.Background(), tok, apitoken.Request{})
	must(err)
	tests := []struct {
		name string
		mw   func(http.Handler) http.Handler
		p    *apitoken.Principal
		want int
	}{
		{"role held", apitoken.RequireRole("admin", "observer"), p, 204},
		{"role missing", apitoken.RequireRole("admin"), p, 403},
		{"access held", apitoken.RequireAccess("devices", apitoken.AccessRead), p, 204},
		{"access missing", apitoken.RequireAccess("devices", apitoken.AccessFull), p, 403},
		{"no principal", apitoken.RequireRole("observer"), nil, 401},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.p != nil {
			r = r.WithContext(apitoken.WithPrincipal(r.Context(), tc.p))
		}
		w := httptest.NewRecorder()
		tc.mw(ok).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
}

func TestSlogObserverNeverLogsToken(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newMW(t, testPolicy(), apitoken.WithObserver(apitoken.SlogObserver(logger)))
	tok, _ := m.issue(t, orgSpec())
	m.do("GET", "Bearer "+tok)
	m.do("POST", "Bearer "+tok)
	m.do("GET", "Bearer "+tok[:len(tok)-2]+"zz")
	out := buf.String()
	if strings.Count(out, "\n") != 3 || !strings.Contains(out, "forbidden") || !strings.Contains(out, "malformed") {
		t.Errorf("log = %s; want three lines with the reasons", out)
	}
	if strings.Contains(out, tok[5:]) || strings.Contains(out, tok[5:len(tok)-2]) {
		t.Errorf("log holds the token: %s", out)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name   string
		remote string
		header map[string][]string
		want   string
	}{
		{"peer", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"spoofed XFF from untrusted peer", "192.0.2.1:1234", map[string][]string{"X-Forwarded-For": {"10.9.9.9"}}, "192.0.2.1"},
		{"spoofed X-Real-IP from untrusted peer", "192.0.2.1:1234", map[string][]string{"X-Real-Ip": {"10.9.9.9"}}, "192.0.2.1"},
		{"trusted proxy, XFF", "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"right-most untrusted", "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7, 10.0.0.2"}}, "198.51.100.7"},
		{"several XFF lines", "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.7, 10.0.0.2"}}, "198.51.100.7"},
		{"all trusted", "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"10.0.0.3, 10.0.0.2"}}, "10.0.0.3"},
		{"garbage behind trusted", "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7, nonsense"}}, "invalid IP"},
		{"Forwarded", "10.0.0.1:80", map[string][]string{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded wins over XFF", "10.0.0.1:80", map[string][]string{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-For": {"198.51.100.7"}}, "192.0.2.60"},
		{"Forwarded unknown", "10.0.0.1:80", map[string][]string{"Forwarded": {"for=unknown"}}, "invalid IP"},
		{"X-Real-IP", "10.0.0.1:80", map[string][]string{"X-Real-Ip": {"198.51.100.7"}}, "198.51.100.7"},
		{"mapped peer", "[::ffff:10.0.0.1]:80", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"IPv6 trusted proxy", "[fd00::1]:80", map[string][]string{"X-Forwarded-For": {"2001:db8::5"}}, "2001:db8::5"},
		{"unparseable peer", "pipe", nil, "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, vs := range tc.header {
				r.Header[k] = vs
			}
			if got := apitoken.ClientIP(r, trusted...); got.String() != tc.want {
				t.Errorf("ClientIP = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMiddlewareLoopback drives a real loopback server with concurrent
// clients under a frozen clock: each budget allows exactly its burst; user
// tokens of one user share a budget, org tokens don't.
func TestMiddlewareLoopback(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(10, time.Minute), Burst: 5}
	pol.UserRateLimit = apitoken.Limit{Rate: apitoken.Per(10, time.Minute), Burst: 7}
	m := newMW(t, pol)
	m.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"observer"}})
	org1, _ := m.issue(t, orgSpec())
	org2, _ := m.issue(t, orgSpec())
	u1a, _ := m.issue(t, userSpec("u1"))
	u1b, _ := m.issue(t, userSpec("u1"))
	srv := httptest.NewServer(m.handler)
	defer srv.Close()

	count := func(tokens []string, perToken int) map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for _, tok := range tokens {
			for range 4 {
				wg.Go(func() {
					for range perToken / 4 {
						req, _ := http.NewRequest("GET", srv.URL+"/devices/1", nil)
						req.Header.Set("Authorization", "Bearer "+tok)
						req.Header.Set("X-Org", "org_1")
						resp, err := srv.Client().Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						if resp.StatusCode == 200 {
							got[tok]++
						} else if resp.StatusCode != 429 {
							t.Errorf("status %d", resp.StatusCode)
						}
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		return got
	}
	got := count([]string{org1, org2, u1a, u1b}, 20)
	if got[org1] != 5 || got[org2] != 5 || got[u1a]+got[u1b] != 7 {
		t.Errorf("allowed per token = org1 %d, org2 %d, user tokens %d+%d; want 5, 5, 7 together", got[org1], got[org2], got[u1a], got[u1b])
	}
	// 30 seconds later: burst + rate × elapsed = 5 more per org token.
	m.clock.Advance(30 * time.Second)
	got = count([]string{org1}, 20)
	if got[org1] != 5 {
		t.Errorf("after 30s: %d allowed, want 5 (10/min × 30s)", got[org1])
	}
}

func TestMiddlewareNilValidator(t *testing.T) {
	h := apitoken.Middleware(nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler called") }))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer x")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 {
		t.Errorf("nil validator: %d, want 503", w.Code)
	}
}

// Responses with different limits each name their own policy, and a handler
// adding to the header does not change what later responses send.
func TestMiddlewareRateLimitPolicyPerLimit(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 2}
	m := newMW(t, pol)
	plain, _ := m.issue(t, orgSpec())
	spec := orgSpec()
	spec.RateLimit = &apitoken.Limit{Rate: 10, Burst: 50}
	own, _ := m.issue(t, spec)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add(apitoken.HeaderRateLimitPolicy, `"handler";q=1`)
	})
	h := apitoken.Middleware(m.v)(next)
	for range 2 {
		for _, c := range []struct{ tok, want string }{
			{plain, `"default";q=2;w=120`},
			{own, `"default";q=50;w=5`},
		} {
			r := httptest.NewRequest("GET", "/devices/1", nil)
			r.Header.Set("Authorization", "Bearer "+c.tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Values(apitoken.HeaderRateLimitPolicy); len(got) != 2 || got[0] != c.want {
				t.Errorf("RateLimit-Policy values = %q, want [%q and the handler's]", got, c.want)
			}
		}
	}
}
