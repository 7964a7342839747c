package httpauth_test

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
)

func challenge(w *httptest.ResponseRecorder) string { return w.Header().Get("WWW-Authenticate") }

func TestMiddlewareResponses(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithAPIKeyHeader(""))
	tok, _ := m.issue(t, orgSpec())
	long := "acme_" + strings.Repeat("a", 9*1024)
	other, _ := m.issue(t, orgSpec())
	const (
		bare         = `Bearer realm="api"`
		badRequest   = `Bearer realm="api", error="invalid_request"`
		invalidToken = `Bearer realm="api", error="invalid_token"`
		needsFull    = `Bearer realm="api", error="insufficient_scope", scope="devices:full"`
	)
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
		{"no credentials", "GET", "", nil, 401, bare},
		{"other scheme", "GET", "Basic dXNlcjpwYXNz", nil, 401, bare},
		{"bearer without token", "GET", "Bearer", nil, 400, badRequest},
		{"bearer and spaces", "GET", "Bearer    ", nil, 400, badRequest},
		{"two words", "GET", "Bearer " + tok + " extra", nil, 400, badRequest},
		{"empty API key header", "GET", "", func(r *http.Request) { r.Header.Set("X-API-Key", " ") }, 400, badRequest},
		{"two different tokens", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Set("X-API-Key", other) }, 400, badRequest},
		{"two Authorization headers", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Add("Authorization", "Bearer acme_other") }, 400, badRequest},
		{"non-ASCII token", "GET", "Bearer acme_" + strings.Repeat("é", 18), nil, 400, badRequest},
		{"mixed-case scheme", "GET", "bEaReR " + tok, nil, 200, ""},
		{"quote in token", "GET", `Bearer "` + tok + `"`, nil, 400, badRequest},
		{"comma in token", "GET", "Bearer " + tok + ",", nil, 400, badRequest},
		{"b64token padding", "GET", "Bearer " + tok + "==", nil, 401, invalidToken},
		{"padding only", "GET", "Bearer ==", nil, 400, badRequest},
		{"non-ASCII API key", "GET", "", func(r *http.Request) { r.Header.Set("X-API-Key", tok+"é") }, 400, badRequest},
		{"NUL in API key", "GET", "", func(r *http.Request) { r.Header.Set("X-API-Key", tok[:10]+"\x00"+tok[10:]) }, 400, badRequest},
		{"9 KiB token", "GET", "Bearer " + long, nil, 401, invalidToken},
		{"query token off by default", "GET", "", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, 401, bare},
		{"write needs full access", "POST", "Bearer " + tok, nil, 403, needsFull},
		{"DELETE needs full access", "DELETE", "Bearer " + tok, nil, 403, needsFull},
		{"HEAD is a read", "HEAD", "Bearer " + tok, nil, 200, ""},
		{"OPTIONS is a read", "OPTIONS", "Bearer " + tok, nil, 200, ""},
		{"other org", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Set("X-Org", "org_2") }, 401, invalidToken},
		{"no org on a multi-tenant validator", "GET", "Bearer " + tok, func(r *http.Request) { r.Header.Del("X-Org") }, 401, invalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := m.calls.Load()
			var mod []func(*http.Request)
			if tc.mod != nil {
				mod = append(mod, tc.mod)
			}
			w := m.do(tc.method, tc.auth, mod...)
			require.Equal(t, tc.status, w.Code, "%s %q", tc.method, tc.auth)
			assert.Equal(t, tc.challenge, challenge(w))
			assert.Equal(t, tc.status == 200, m.calls.Load() > before, "handler called")
			if tc.status != 200 {
				codes := map[string]string{bare: httpauth.CodeUnauthenticated, badRequest: httpauth.CodeInvalidRequest,
					invalidToken: httpauth.CodeInvalidToken, needsFull: httpauth.CodeInsufficientScope}
				checkProblem(t, w, tc.status, codes[tc.challenge])
				assert.NotContains(t, w.Body.String(), tok, "response body holds the token")
			}
		})
	}
}

// checkProblem checks that w is an RFC 9457 problem of package adminapi's
// shape (type, title, status, detail, code; nothing else) with status and
// code.
func checkProblem(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p), "problem body")
	assert.Equal(t, "about:blank", p.Type)
	assert.Equal(t, http.StatusText(status), p.Title)
	assert.Equal(t, status, p.Status)
	assert.NotEmpty(t, p.Detail)
	assert.Equal(t, code, p.Code)
}

// TestWriteFailure: the default writer's challenge, Retry-After and
// problem code for each status, whatever f.Err says.
func TestWriteFailure(t *testing.T) {
	secret := errors.New("acme_secret stored hash 1f2e")
	tests := []struct {
		name       string
		f          httpauth.Failure
		challenge  string
		retryAfter string
		code       string
		wantStatus int
	}{
		{"no credentials", httpauth.Failure{Status: 401}, `Bearer realm="api"`, "", "unauthenticated", 401},
		{"invalid token", httpauth.Failure{Status: 401, Code: httpauth.CodeInvalidToken}, `Bearer realm="api", error="invalid_token"`, "", "invalid_token", 401},
		{"malformed", httpauth.Failure{Status: 400, Code: httpauth.CodeInvalidRequest}, `Bearer realm="api", error="invalid_request"`, "", "invalid_request", 400},
		{"scope", httpauth.Failure{Status: 403, Code: httpauth.CodeInsufficientScope, Scope: "devices:full"},
			`Bearer realm="api", error="insufficient_scope", scope="devices:full"`, "", "insufficient_scope", 403},
		{"rate limited", httpauth.Failure{Status: 429, RetryAfter: 1500 * time.Millisecond}, "", "2", "rate_limited", 429},
		{"unavailable", httpauth.Failure{Status: 503}, "", "1", "unavailable", 503},
		{"other status", httpauth.Failure{Status: 500}, "", "", "internal", 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Err = secret
			w := httptest.NewRecorder()
			httpauth.WriteFailure("api")(w, httptest.NewRequest("GET", "/", nil), &tc.f)
			require.Equal(t, tc.wantStatus, w.Code)
			assert.Equal(t, tc.challenge, challenge(w))
			assert.Equal(t, tc.retryAfter, w.Header().Get("Retry-After"))
			assert.Equal(t, tc.code, tc.f.ProblemCode())
			checkProblem(t, w, tc.wantStatus, tc.code)
			assert.NotContains(t, w.Body.String(), "secret", "f.Err in the body")
		})
	}
}

// TestMiddlewareNoOracle: unknown, never issued, bad-checksum, expired,
// revoked, idle and other-tenant tokens, and an org token in a request with
// no org, get byte-identical responses (status, every header, body); only
// the observer learns why, and the token's ID and hint where one was found.
func TestMiddlewareNoOracle(t *testing.T) {
	pol := testPolicy()
	pol.IdleTimeout = 24 * time.Hour
	m := newMW(t, pol)
	ctx := context.Background()
	idle, idleTok := m.issue(t, orgSpec())
	m.clock.Advance(25 * time.Hour)
	short := orgSpec()
	short.Lifetime = apitoken.Minutes(1)
	expired, expiredTok := m.issue(t, short)
	revoked, revokedTok := m.issue(t, orgSpec())
	require.NoError(t, m.iss.Revoke(ctx, revokedTok.ID))
	foreign := orgSpec()
	foreign.OrgID = "org_9"
	other, otherTok := m.issue(t, foreign)
	good, goodTok := m.issue(t, orgSpec())
	last := byte('a')
	if good[len(good)-1] == 'a' {
		last = 'b'
	}
	badSum := good[:len(good)-1] + string(last)
	m.clock.Advance(2 * time.Minute)
	deleted, dt := m.issue(t, orgSpec())
	require.NoError(t, m.iss.Delete(ctx, dt.ID))
	noOrg := func(r *http.Request) { r.Header.Del("X-Org") }

	cases := []struct {
		name string
		tok  string
		mod  func(*http.Request)
		id   string // the token the observer must name; "" for none found
	}{
		{"deleted", deleted, nil, ""},
		{"never issued", forge(t, "acme", 1)[0], nil, ""},
		{"bad checksum", badSum, nil, ""},
		{"expired", expired, nil, expiredTok.ID},
		{"revoked", revoked, nil, revokedTok.ID},
		{"idle", idle, nil, idleTok.ID},
		{"other tenant", other, nil, otherTok.ID},
		{"no org", good, noOrg, goodTok.ID},
	}
	var first *httptest.ResponseRecorder
	for _, c := range cases {
		m.drain()
		var mod []func(*http.Request)
		if c.mod != nil {
			mod = append(mod, c.mod)
		}
		w := m.do("GET", "Bearer "+c.tok, mod...)
		require.Equal(t, 401, w.Code, c.name)
		if first == nil {
			first = w
		} else {
			assert.Equal(t, first.Header(), w.Header(), "%s: headers differ", c.name)
			assert.Equal(t, first.Body.String(), w.Body.String(), "%s: body differs", c.name)
		}
		o := <-m.outcomes
		assert.Error(t, o.Err, c.name)
		assert.Equal(t, 401, o.Status, c.name)
		assert.Equal(t, c.id, o.TokenID, c.name)
		if c.id != "" {
			assert.NotEmpty(t, o.Hint, c.name)
		}
	}
}

// A 403 on access names the missing scope in the challenge, and tells the
// observer the token and the API and level it lacked.
func TestMiddlewareForbiddenScope(t *testing.T) {
	m := newMW(t, testPolicy())
	tok, rec := m.issue(t, orgSpec())
	m.drain()
	w := m.do("PUT", "Bearer "+tok)
	require.Equal(t, 403, w.Code)
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope", scope="devices:full"`, challenge(w))
	o := <-m.outcomes
	assert.Equal(t, rec.ID, o.TokenID)
	assert.Equal(t, rec.Hint, o.Hint)
	assert.Equal(t, "devices", o.API)
	assert.Equal(t, apitoken.AccessFull, o.Access)
	assert.ErrorIs(t, o.Err, apitoken.ErrForbidden)

	assert.Equal(t, "devices:full", httpauth.Scope("devices", apitoken.AccessFull))
	assert.Equal(t, "", httpauth.Scope(`bad "api"`, apitoken.AccessRead), "a name a scope token cannot hold")
	assert.Equal(t, "", httpauth.Scope("devices", apitoken.AccessNone))
}

func TestMiddlewareForbiddenAndLimits(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 2}
	m := newMW(t, pol, httpauth.WithXRateLimitHeaders())
	spec := orgSpec()
	spec.IPFilter = "office"
	tok, _ := m.issue(t, spec)

	w := m.do("GET", "Bearer "+tok, func(r *http.Request) { r.RemoteAddr = "192.0.2.1:1" })
	assert.Equal(t, 403, w.Code, "outside the IP filter")
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope"`, challenge(w))
	w = m.do("GET", "Bearer "+tok, func(r *http.Request) { r.RemoteAddr = "[::ffff:10.0.0.1]:1" })
	require.Equal(t, 200, w.Code, "IPv4-mapped peer inside 10.0.0.0/8")
	assert.Equal(t, `"default";r=1;t=60`, w.Header().Get("RateLimit"))
	assert.Equal(t, `"default";q=2;w=120`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, "2", w.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, "1", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "60", w.Header().Get("X-RateLimit-Reset"))
	m.do("GET", "Bearer "+tok) // second of the burst
	before := m.calls.Load()
	w = m.do("GET", "Bearer "+tok)
	require.Equal(t, 429, w.Code, "over the limit")
	assert.Equal(t, "60", w.Header().Get("Retry-After"))
	assert.Equal(t, `"default";r=0;t=60`, w.Header().Get("RateLimit"), "t: until the next request, as Retry-After")
	assert.Equal(t, "120", w.Header().Get("X-RateLimit-Reset"), "until the bucket is full")
	checkProblem(t, w, 429, httpauth.CodeRateLimited)
	assert.Equal(t, before, m.calls.Load(), "handler called on 429")
}

func TestMiddlewareStoreOutage(t *testing.T) {
	m := newMW(t, testPolicy())
	tok, _ := m.issue(t, orgSpec())
	m.store.down.Store(true)
	w := m.do("GET", "Bearer "+tok)
	require.Equal(t, 503, w.Code, "store down")
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
	assert.Zero(t, m.calls.Load())
	checkProblem(t, w, 503, httpauth.CodeUnavailable)
	m.store.down.Store(false)
	assert.Equal(t, 200, m.do("GET", "Bearer "+tok).Code, "store back")
}

func TestMiddlewareClosedValidator(t *testing.T) {
	m := newMW(t, testPolicy())
	tok, _ := m.issue(t, orgSpec())
	require.NoError(t, m.v.Close(context.Background()))
	w := m.do("GET", "Bearer "+tok)
	assert.Equal(t, 503, w.Code)
	assert.Zero(t, m.calls.Load())
}

func TestMiddlewarePrincipalAndAPI(t *testing.T) {
	m := newMW(t, testPolicy())
	tok, rec := m.issue(t, orgSpec())
	// The API name comes from the matched pattern "/devices/{id}".
	w := m.do("GET", "Bearer "+tok)
	require.Equal(t, 200, w.Code)
	assert.Equal(t, "hello ci", w.Body.String())
	p := m.lastSeen.Load()
	require.NotNil(t, p)
	assert.Equal(t, rec.ID, p.TokenID)
	o := <-m.outcomes
	assert.Equal(t, "devices", o.API)
	assert.Equal(t, apitoken.AccessRead, o.Access)
	assert.Equal(t, officeIP, o.ClientIP)
	assert.NotNil(t, o.Principal)
	assert.Equal(t, rec.ID, o.TokenID)
	_, ok := httpauth.PrincipalFrom(context.Background())
	assert.False(t, ok, "PrincipalFrom(empty context)")
}

// TestMiddlewareHandlerContext checks the context the handler gets: it
// carries the principal through contexts derived from it, keeps the
// request's own values and cancellation, and prints no principal field.
func TestMiddlewareHandlerContext(t *testing.T) {
	type hostKey struct{}
	e := newEnv(t, testPolicy(), apitoken.WithSingleTenant("org_1"))
	spec := orgSpec()
	spec.Name = "deploy-bot-7"
	tok, rec := e.issue(t, spec)
	var got struct {
		p, derived *apitoken.Principal
		host       any
		err        error
		printed    string
	}
	auth, err := httpauth.New(e.v, httpauth.WithAPIName("devices"))
	require.NoError(t, err)
	h := auth.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		got.p, _ = httpauth.PrincipalFrom(ctx)
		derived, cancel := context.WithCancel(context.WithValue(ctx, hostKey{}, "inner"))
		defer cancel()
		got.derived, _ = httpauth.PrincipalFrom(derived)
		got.host = ctx.Value(hostKey{})
		got.err = derived.Err()
		got.printed = fmt.Sprint(ctx)
	}))
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), hostKey{}, "outer"))
	cancel() // the client went away: the handler must see it
	r := httptest.NewRequestWithContext(parent, "GET", "/devices/1", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(httptest.NewRecorder(), r)
	require.NotNil(t, got.p, "PrincipalFrom(handler context)")
	assert.Equal(t, rec.ID, got.p.TokenID)
	assert.Same(t, got.p, got.derived, "PrincipalFrom(derived context)")
	assert.Equal(t, "outer", got.host, "request context value")
	assert.ErrorIs(t, got.err, context.Canceled, "derived context error")
	assert.NotContains(t, got.printed, rec.ID)
	assert.NotContains(t, got.printed, rec.Name)
	assert.Contains(t, got.printed, "apitoken.Principal")
}

func TestMiddlewareOptions(t *testing.T) {
	var handled []int
	m := newMW(t, testPolicy(),
		httpauth.WithQueryParam("access_token"),
		httpauth.WithRealm(`my "api"`),
		httpauth.WithAPIName("billing"),
	)
	tok, _ := m.issue(t, orgSpec())
	w := m.do("GET", "", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok })
	assert.Equal(t, 403, w.Code, "query token for billing (no billing grant)")
	assert.Equal(t, `my \"api\"`, strings.TrimSuffix(strings.TrimPrefix(challenge(m.do("GET", "")), `Bearer realm="`), `"`))

	custom := newMW(t, testPolicy(),
		httpauth.WithoutBearer(),
		httpauth.WithExtractor(func(r *http.Request) (string, bool) {
			c, err := r.Cookie("tok")
			if err != nil {
				return "", false
			}
			return c.Value, true
		}),
		httpauth.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, f *httpauth.Failure) {
			handled = append(handled, f.Status)
			w.WriteHeader(418)
		}),
	)
	tok2, _ := custom.issue(t, orgSpec())
	assert.Equal(t, 418, custom.do("GET", "Bearer "+tok2).Code, "bearer ignored: the custom 418")
	w = custom.do("GET", "", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "tok", Value: tok2}) })
	assert.Equal(t, 200, w.Code, "cookie extractor")
	assert.Equal(t, []int{401}, handled, "custom error handler")
}

// New validates: each mistake fails with a message that says what to add.
func TestNewErrors(t *testing.T) {
	multi := newEnv(t, testPolicy()).v
	single := newEnv(t, testPolicy(), apitoken.WithSingleTenant("org_1")).v
	office := mustPrefix("10.0.0.0/8")
	tests := []struct {
		name string
		v    *apitoken.Validator
		opts []httpauth.Option
		want string
	}{
		{"nil validator", nil, nil, "httpauth: New: nil Validator: build one with apitoken.NewValidator"},
		{"forgotten org", multi, nil, "httpauth: New: the Validator is multi-tenant: add httpauth.WithOrg(...) to say where a request's org comes from, or build the Validator with apitoken.WithSingleTenant(org)"},
		{"zero option", single, []httpauth.Option{{}}, "httpauth: New: zero Option"},
		{"no token source", single, []httpauth.Option{httpauth.WithoutBearer()}, "WithoutBearer leaves no way to find a token: add WithAPIKeyHeader, WithQueryParam or WithExtractor"},
		{"nil org func", multi, []httpauth.Option{httpauth.WithOrg(nil)}, "httpauth: New: WithOrg: nil func"},
		{"no proxy header", single, []httpauth.Option{httpauth.WithTrustedProxies("", office)}, "WithTrustedProxies: no header: name the one header your proxies set"},
		{"no proxies", single, []httpauth.Option{httpauth.WithTrustedProxies("X-Forwarded-For")}, "WithTrustedProxies: no trusted proxies: name the prefixes of the proxies that set X-Forwarded-For"},
		{"not an address header", single, []httpauth.Option{httpauth.WithTrustedProxies("X-Forwarded-Host", office)}, "carries no client address"},
		{"bad header name", single, []httpauth.Option{httpauth.WithTrustedProxies("X Real IP", office)}, "not a valid field name"},
		{"trust everyone", single, []httpauth.Option{httpauth.WithTrustedProxies("X-Real-IP", mustPrefix("0.0.0.0/0"))}, "trusts every address"},
		{"empty API name", single, []httpauth.Option{httpauth.WithAPIName("")}, "WithAPIName: invalid API name"},
		{"dot API name", single, []httpauth.Option{httpauth.WithAPIName("..")}, "WithAPIName: invalid API name"},
		{"bad failure limit", single, []httpauth.Option{httpauth.WithFailureLimit(apitoken.Limit{Rate: 1})}, "WithFailureLimit: invalid limit"},
		{"API key header Authorization", single, []httpauth.Option{httpauth.WithAPIKeyHeader("authorization")}, "WithAPIKeyHeader: the Authorization header is read as Bearer already"},
		{"realm with a newline", single, []httpauth.Option{httpauth.WithRealm("a\r\nSet-Cookie: x")}, "WithRealm: realm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := httpauth.New(tc.v, tc.opts...)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := httpauth.New(multi, httpauth.WithOrg(func(*http.Request) string { return "" }))
	assert.NoError(t, err, "a multi-tenant Validator with WithOrg")
	_, err = httpauth.New(single)
	assert.NoError(t, err, "a single-tenant Validator without WithOrg")
	_, err = httpauth.New(single, httpauth.WithFailureLimit(apitoken.Limit{}))
	assert.NoError(t, err, "the zero failure limit turns the budget off")
	assert.Panics(t, func() {
		m, _ := httpauth.New(single)
		m.Wrap(nil)
	})
}

// TestMiddlewareLoopback drives a real loopback server with concurrent
// clients under a frozen clock: each budget allows exactly its burst; user
// tokens of one user share a budget, org tokens don't.
func TestMiddlewareLoopback(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(10, time.Minute), Burst: 5}
	pol.UserRateLimit = apitoken.Limit{Rate: apitoken.Per(10, time.Minute), Burst: 7}
	m := newMW(t, pol)
	m.dir.Set("u1", "org_1", apitoken.Membership{Roles: []string{"observer"}})
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
	assert.Equal(t, 5, got[org1], "org1")
	assert.Equal(t, 5, got[org2], "org2")
	assert.Equal(t, 7, got[u1a]+got[u1b], "user tokens together")
	// 30 seconds later: burst + rate × elapsed = 5 more per org token.
	m.clock.Advance(30 * time.Second)
	got = count([]string{org1}, 20)
	assert.Equal(t, 5, got[org1], "after 30s (10/min × 30s)")
}

// Responses with different limits each name their own policy, and a handler
// adding to the header does not change what later responses send.
func TestMiddlewareRateLimitPolicyPerLimit(t *testing.T) {
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: 10, Burst: 50}
	m := newMW(t, pol)
	plain, _ := m.issue(t, orgSpec())
	spec := orgSpec()
	spec.RateLimit = &apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 2} // under the policy's: no privilege
	own, _ := m.issue(t, spec)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add(httpauth.HeaderRateLimitPolicy, `"handler";q=1`)
	})
	auth, err := httpauth.New(m.v, httpauth.WithOrg(func(*http.Request) string { return "org_1" }), httpauth.WithAPIName("devices"))
	require.NoError(t, err)
	h := auth.Wrap(next)
	for range 2 {
		for _, c := range []struct{ tok, want string }{
			{plain, `"default";q=50;w=5`},
			{own, `"default";q=2;w=120`},
		} {
			r := httptest.NewRequest("GET", "/devices/1", nil)
			r.Header.Set("Authorization", "Bearer "+c.tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, []string{c.want, `"handler";q=1`}, w.Header().Values(httpauth.HeaderRateLimitPolicy))
		}
	}
}

// The default API name is the first segment of the matched ServeMux
// pattern, whatever its method and host; a pattern that names none denies.
func TestMiddlewareAPIFromPattern(t *testing.T) {
	e := newEnv(t, testPolicy(), apitoken.WithSingleTenant("org_1"))
	tok, _ := e.issue(t, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "all", Roles: []string{"admin"}})
	var seen []string
	auth, err := httpauth.New(e.v, httpauth.WithObserver(func(_ *http.Request, o httpauth.Outcome) {
		seen = append(seen, fmt.Sprint(o.API, " ", o.Status))
	}))
	require.NoError(t, err)
	ok := auth.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, c := range [][2]string{
		{"/devices/{id}", "/devices/1"},
		{"GET /sites/", "/sites/a"},
		{"example.com/hosts/", "http://example.com/hosts/"},
		{"/{org}/x/", "/acme/x/"},
		{"/{$}", "/"},
	} {
		mux := http.NewServeMux()
		mux.Handle(c[0], ok)
		r := httptest.NewRequest("GET", c[1], nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		mux.ServeHTTP(httptest.NewRecorder(), r)
	}
	assert.Equal(t, []string{"devices 0", "sites 0", "hosts 0", "{org} 403", "{$} 403"}, seen)
}

// TestMiddlewareMalformedCredentials: RFC 6750 §3.1's invalid_request, a
// 400 without a store lookup, for credentials that are malformed (not a
// b64token: non-ASCII, quotes, commas, spaces, empty) or sent by more than
// one method: a token in the query beside a header (even the same token),
// or the query parameter twice.
func TestMiddlewareMalformedCredentials(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithAPIKeyHeader(""), httpauth.WithQueryParam(""))
	tok, _ := m.issue(t, orgSpec())
	other, _ := m.issue(t, orgSpec())
	query := func(q string) func(*http.Request) { return func(r *http.Request) { r.URL.RawQuery = q } }
	apiKey := func(k string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("X-API-Key", k) } }
	tests := []struct {
		name   string
		auth   string
		mod    []func(*http.Request)
		status int
	}{
		{"query alone", "", []func(*http.Request){query("access_token=" + tok)}, 200},
		{"query among other parameters", "", []func(*http.Request){query("a=1&access_token=" + tok + "&b=2")}, 200},
		{"Basic beside the query", "Basic dXNlcjpwYXNz", []func(*http.Request){query("access_token=" + tok)}, 200},
		{"header and query, same token", "Bearer " + tok, []func(*http.Request){query("access_token=" + tok)}, 400},
		{"header and query, different tokens", "Bearer " + tok, []func(*http.Request){query("access_token=" + other)}, 400},
		{"API key and query, same token", "", []func(*http.Request){apiKey(tok), query("access_token=" + tok)}, 400},
		{"query parameter twice, same token", "", []func(*http.Request){query("access_token=" + tok + "&access_token=" + tok)}, 400},
		{"empty query parameter", "", []func(*http.Request){query("access_token=")}, 400},
		{"non-ASCII query token", "", []func(*http.Request){query("access_token=" + tok + "%C3%A9")}, 400},
		{"query token with a space", "", []func(*http.Request){query("access_token=" + tok[:8] + "+" + tok[8:])}, 400},
		{"non-ASCII bearer", "Bearer " + tok[:8] + "é" + tok[9:], nil, 400},
		{"Latin-1 byte in bearer", "Bearer " + tok[:8] + "\xe9" + tok[9:], nil, 400},
		{"DEL in bearer", "Bearer " + tok[:8] + "\x7f" + tok[9:], nil, 400},
		{"backslash in bearer", "Bearer " + tok[:8] + `\` + tok[9:], nil, 400},
		{"bearer token68 with inner padding", "Bearer " + tok[:8] + "=" + tok[9:], nil, 400},
		{"header and API key, same token", "Bearer " + tok, []func(*http.Request){apiKey(tok)}, 200},
		{"header and API key, different tokens", "Bearer " + tok, []func(*http.Request){apiKey(other)}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookups, calls := m.store.lookups.Load(), m.calls.Load()
			w := m.do("GET", tc.auth, tc.mod...)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			if tc.status == 400 {
				assert.Equal(t, `Bearer realm="api", error="invalid_request"`, challenge(w))
				checkProblem(t, w, 400, httpauth.CodeInvalidRequest)
				assert.Equal(t, lookups, m.store.lookups.Load(), "store lookups for a malformed request")
				assert.Equal(t, calls, m.calls.Load(), "handler called")
			}
		})
	}

	// An extractor's token beside the query's is two methods too.
	cookie := newMW(t, testPolicy(), httpauth.WithQueryParam(""), httpauth.WithExtractor(func(r *http.Request) (string, bool) {
		c, err := r.Cookie("tok")
		if err != nil {
			return "", false
		}
		return c.Value, true
	}))
	ctok, _ := cookie.issue(t, orgSpec())
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "tok", Value: ctok}) }
	assert.Equal(t, 200, cookie.do("GET", "", withCookie).Code, "cookie alone")
	assert.Equal(t, 400, cookie.do("GET", "", withCookie, query("access_token="+ctok)).Code, "cookie and query")
}

// TestMiddlewareHugeCredentials: a 9 KiB token and a 1 MiB Authorization
// header are refused as invalid tokens (401) without a store lookup, and
// neither panics; so through a real server, which itself refuses a header
// past its 1 MiB limit (431) before the middleware runs.
func TestMiddlewareHugeCredentials(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithFailureLimit(apitoken.Limit{}))
	cases := map[string]string{
		"9 KiB token":              "acme_" + strings.Repeat("a", 9*1024),
		"1 MiB token":              "acme_" + strings.Repeat("Z", 1<<20),
		"1 MiB of another prefix":  strings.Repeat("x", 1<<20),
		"257-byte well-formed run": "acme_" + strings.Repeat("0", 252),
	}
	for name, tok := range cases {
		w := m.do("GET", "Bearer "+tok)
		assert.Equal(t, 401, w.Code, name)
		assert.Equal(t, `Bearer realm="api", error="invalid_token"`, challenge(w), name)
		assert.NotContains(t, w.Body.String(), tok[:64], name)
	}
	w := m.do("GET", "Bearer "+strings.Repeat("é", 1<<19)) // 1 MiB, not a b64token
	assert.Equal(t, 400, w.Code, "1 MiB of non-ASCII")
	assert.Zero(t, m.store.lookups.Load(), "store lookups")
	assert.Zero(t, m.calls.Load(), "handler calls")

	srv := httptest.NewServer(m.handler)
	defer srv.Close()
	for size, want := range map[int]int{1 << 20: 401, 2 << 20: http.StatusRequestHeaderFieldsTooLarge} {
		req, err := http.NewRequest("GET", srv.URL+"/devices/1", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer acme_"+strings.Repeat("a", size))
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "a %d-byte token through net/http", size)
	}
	assert.Zero(t, m.store.lookups.Load(), "store lookups")
}

// TestMiddlewareQueryTokenNotLogged: ?access_token= is no credential by
// default (401 with a bare challenge, as without a token), and neither the
// token nor the URL reaches the middleware's log (SlogObserver at Debug,
// text and JSON) whether the parameter is read or not.
func TestMiddlewareQueryTokenNotLogged(t *testing.T) {
	var logs bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		observe := httpauth.WithObserver(httpauth.SlogObserver(slog.New(h)))
		off := newMW(t, testPolicy(), observe)
		tok, _ := off.issue(t, orgSpec())
		w := off.do("GET", "", func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + tok
			r.RequestURI = "/devices/42?access_token=" + tok
		})
		assert.Equal(t, 401, w.Code, "query parameter off by default")
		assert.Equal(t, `Bearer realm="api"`, challenge(w))
		on := newMW(t, testPolicy(), observe, httpauth.WithQueryParam(""))
		tok2, _ := on.issue(t, orgSpec())
		q := func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + tok2
			r.RequestURI = "/devices/42?access_token=" + tok2
		}
		assert.Equal(t, 200, on.do("GET", "", q).Code, "query parameter on")
		assert.Equal(t, 400, on.do("GET", "Bearer "+tok2, q).Code, "query and header")
		for _, secret := range []string{tok, tok2} {
			assert.NotContains(t, logs.String(), secret[len(secret)-16:], "a token in the log")
		}
		assert.NotContains(t, logs.String(), "access_token", "the URL in the log")
		assert.Contains(t, logs.String(), "request allowed", "the log was written")
	}
}
