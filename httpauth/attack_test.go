package httpauth_test

// Tests that perform the attacks issue 10 names, each against the
// middleware's defaults or the trust a host declared.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
)

// officeSpec is an org token usable only from the office, 203.0.113.0/24.
func officeSpec() apitoken.Spec {
	s := orgSpec()
	s.IPPrefixes = []string{"203.0.113.0/24"}
	return s
}

// behindProxy sends GET /devices/1 with token through a proxy at
// 172.16.0.1 (the peer), with the given request headers.
func behindProxy(h http.Handler, token string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/devices/1", nil)
	r.RemoteAddr = "172.16.0.1:33000"
	r.Header = header.Clone()
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("X-Org", "org_1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// A client behind a proxy that appends X-Forwarded-For sends its own
// Forwarded header naming the office: it must not pass the IP filter,
// however it spells it.
func TestAttackSpoofedForwardedBehindXFFProxy(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithTrustedProxies("X-Forwarded-For", mustPrefix("172.16.0.0/12")))
	tok, _ := m.issue(t, officeSpec())
	const client = "198.51.100.7" // what the proxy appends: the real client
	for _, spoof := range []string{`for=203.0.113.9`, `FOR=203.0.113.9`, `for="203.0.113.9`, `for="203.0.113.9:443"`} {
		w := behindProxy(m.handler, tok, http.Header{"Forwarded": {spoof}, "X-Forwarded-For": {client}})
		assert.Equal(t, 403, w.Code, "Forwarded: %s", spoof)
	}
	// The proxy's header decides: an office client passes, the spoofer
	// does not even by adding to X-Forwarded-For (the proxy appends).
	assert.Equal(t, 200, behindProxy(m.handler, tok, http.Header{"X-Forwarded-For": {"203.0.113.9"}}).Code, "office client")
	assert.Equal(t, 403, behindProxy(m.handler, tok, http.Header{"X-Forwarded-For": {"203.0.113.9, " + client}}).Code, "spoofed XFF prefix")
	assert.Equal(t, int64(1), m.calls.Load())
}

// Behind a proxy that sets only X-Real-IP, a client's own X-Forwarded-For
// is ignored.
func TestAttackSpoofedXFFBehindXRealIPProxy(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithTrustedProxies("X-Real-IP", mustPrefix("172.16.0.0/12")))
	tok, _ := m.issue(t, officeSpec())
	w := behindProxy(m.handler, tok, http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Real-Ip": {"198.51.100.7"}})
	assert.Equal(t, 403, w.Code, "spoofed X-Forwarded-For")
	w = behindProxy(m.handler, tok, http.Header{"Forwarded": {"for=203.0.113.9"}, "X-Real-Ip": {"198.51.100.7"}})
	assert.Equal(t, 403, w.Code, "spoofed Forwarded")
	assert.Equal(t, 200, behindProxy(m.handler, tok, http.Header{"X-Real-Ip": {"203.0.113.9"}}).Code, "office client")
}

// A token with every API but billing, behind a catch-all pattern whose
// handler dispatches on the cleaned path itself, must not reach billing
// through unclean paths; nor when the middleware wraps the whole mux.
func TestAttackUncleanPathsBehindCatchAll(t *testing.T) {
	e := newEnv(t, testPolicy(), apitoken.WithSingleTenant("org_1"))
	tok, _ := e.issue(t, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "all-but-billing",
		Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull, "billing": apitoken.AccessNone}})
	var reached []string
	outcomes := make(chan httpauth.Outcome, 10)
	auth, err := httpauth.New(e.v, httpauth.WithObserver(func(_ *http.Request, o httpauth.Outcome) { outcomes <- o }))
	require.NoError(t, err)
	dispatch := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api, _, _ := strings.Cut(strings.TrimPrefix(path.Clean(r.URL.Path), "/"), "/")
		reached = append(reached, api)
	})
	catchAll := http.NewServeMux()
	catchAll.Handle("/", auth.Wrap(dispatch))
	inner := http.NewServeMux()
	inner.Handle("/billing/", dispatch)
	inner.Handle("/devices/", dispatch)
	for name, h := range map[string]http.Handler{
		"catch-all pattern":            catchAll,
		"middleware around the mux":    auth.Wrap(inner),
		"middleware without a pattern": auth.Wrap(dispatch),
	} {
		for _, target := range []string{"//billing/x", "/./billing/x", "/%2Fbilling/x", "/billing/x", "/devices/x"} {
			r := httptest.NewRequest("GET", target, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.NotContains(t, reached, "billing", "%s: %s reached billing", name, target)
			if w.Code/100 == 3 { // ServeMux redirecting to the clean path first
				continue
			}
			assert.Equal(t, 403, w.Code, "%s: %s", name, target)
			select {
			case o := <-outcomes:
				assert.ErrorIs(t, o.Err, httpauth.ErrNoAPI, "%s: %s", name, target)
			default:
				t.Errorf("%s: %s: no decision observed (status %d)", name, target, w.Code)
			}
		}
	}
	assert.Empty(t, reached, "no API name, no handler")
}

// A multi-tenant Validator and a host that forgot to say where the org
// comes from: New fails; and a request whose org function gives "" finds
// no org token.
func TestAttackForgottenOrg(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithOrg(func(*http.Request) string { return "" }))
	_, err := httpauth.New(m.v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "add httpauth.WithOrg(...)")
	tok, _ := m.issue(t, orgSpec())
	w := m.do("GET", "Bearer "+tok)
	assert.Equal(t, 401, w.Code)
	assert.Equal(t, `Bearer realm="api", error="invalid_token"`, challenge(w))
	assert.Zero(t, m.calls.Load())
}

// 1,000 forged well-formed tokens from one client cost at most the failure
// budget's burst in store lookups; the rest are answered 429 without one.
// Another client's genuine token still works, the budget refills with the
// clock, and an IPv6 client is its /64.
func TestAttackForgedTokenFlood(t *testing.T) {
	m := newMW(t, testPolicy())
	good, _ := m.issue(t, orgSpec())
	forged := forge(t, "acme", 1000)
	from := func(addr string) func(*http.Request) { return func(r *http.Request) { r.RemoteAddr = addr } }

	base := m.store.lookups.Load()
	statuses := map[int]int{}
	var last *httptest.ResponseRecorder
	for _, f := range forged {
		last = m.do("GET", "Bearer "+f, from("198.51.100.7:4000"))
		statuses[last.Code]++
	}
	lookups := m.store.lookups.Load() - base
	assert.LessOrEqual(t, lookups, int64(httpauth.DefaultFailureBurst), "store lookups for 1,000 forged tokens")
	assert.Equal(t, map[int]int{401: httpauth.DefaultFailureBurst, 429: 1000 - httpauth.DefaultFailureBurst}, statuses)
	assert.Equal(t, "1", last.Header().Get("Retry-After"))
	checkProblem(t, last, 429, httpauth.CodeRateLimited)

	// The flooding client is refused even with a genuine token, without a
	// lookup; another client is not.
	base = m.store.lookups.Load()
	assert.Equal(t, 429, m.do("GET", "Bearer "+good, from("198.51.100.7:4001")).Code, "flooder")
	assert.Equal(t, base, m.store.lookups.Load(), "no lookup for a throttled client")
	assert.Equal(t, 200, m.do("GET", "Bearer "+good, from("198.51.100.8:4000")).Code, "another client")

	// One second refills one failure.
	m.clock.Advance(time.Second)
	base = m.store.lookups.Load()
	assert.Equal(t, 401, m.do("GET", "Bearer "+forged[0], from("198.51.100.7:4000")).Code)
	assert.Equal(t, 429, m.do("GET", "Bearer "+forged[1], from("198.51.100.7:4000")).Code)
	assert.Equal(t, base+1, m.store.lookups.Load())

	// IPv6: one /64 is one client.
	for i := range httpauth.DefaultFailureBurst {
		m.do("GET", "Bearer "+forged[i], from(fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1)))
	}
	assert.Equal(t, 429, m.do("GET", "Bearer "+good, from("[2001:db8:1:2:ffff::1]:1")).Code, "same /64")
	assert.Equal(t, 200, m.do("GET", "Bearer "+good, from("[2001:db8:1:3::1]:1")).Code, "next /64")
}

// The budget can be set or turned off; what does not count does not spend
// it.
func TestFailureLimitOptions(t *testing.T) {
	m := newMW(t, testPolicy(), httpauth.WithFailureLimit(apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 3}))
	good, _ := m.issue(t, orgSpec())
	for range 10 { // 400s, missing credentials and 403s do not count
		m.do("GET", "Bearer")
		m.do("GET", "")
		m.do("POST", "Bearer "+good)
	}
	forged := forge(t, "acme", 5)
	for i := range 3 {
		assert.Equal(t, 401, m.do("GET", "Bearer "+forged[i]).Code)
	}
	w := m.do("GET", "Bearer "+forged[3])
	assert.Equal(t, 429, w.Code)
	assert.Equal(t, "3600", w.Header().Get("Retry-After"))
	o := m.lastOutcome()
	assert.ErrorIs(t, o.Err, httpauth.ErrThrottled)

	off := newMW(t, testPolicy(), httpauth.WithFailureLimit(apitoken.Limit{}))
	base := off.store.lookups.Load()
	for _, f := range forge(t, "acme", 300) {
		assert.Equal(t, 401, off.do("GET", "Bearer "+f).Code)
	}
	assert.Equal(t, base+300, off.store.lookups.Load(), "no budget: every forged token is looked up")
}

func (m *mwEnv) lastOutcome() httpauth.Outcome {
	var o httpauth.Outcome
	for len(m.outcomes) > 0 {
		o = <-m.outcomes
	}
	return o
}

// A handler that logs everything about its request never shows the token,
// whichever source it came from; the caller's request is left as it was;
// WithForwardCredential keeps the credential.
func TestAttackHandlerLogsRequest(t *testing.T) {
	var logged bytes.Buffer
	logAll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(&logged, "%v %s %v %v %v\n", r.Header, r.RequestURI, r.URL, r.Form, r.URL.Query())
		dump, err := httputil.DumpRequest(r, false)
		if err == nil {
			logged.Write(dump)
		}
	})
	e := newEnv(t, testPolicy(), apitoken.WithSingleTenant("org_1"))
	tok, _ := e.issue(t, orgSpec())
	sources := []httpauth.Option{httpauth.WithAPIKeyHeader("X-API-Key"), httpauth.WithQueryParam("")}
	auth, err := httpauth.New(e.v, sources...)
	require.NoError(t, err)
	forward, err := httpauth.New(e.v, append(sources, httpauth.WithForwardCredential(), httpauth.WithAPIName("devices"))...)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/devices/", auth.Wrap(logAll))
	mux.Handle("/forward/devices/", forward.Wrap(logAll))
	parseFirst := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm()) // a host middleware that parsed the form before
		mux.ServeHTTP(w, r)
	})

	cases := map[string]func(r *http.Request){
		"bearer":  func(r *http.Request) { r.Header.Add("Authorization", "Bearer "+tok) },
		"api key": func(r *http.Request) { r.Header.Set("X-API-Key", tok) },
		"query": func(r *http.Request) {
			r.URL.RawQuery = "a=1&access_token=" + tok + "&b=2"
			r.RequestURI = r.URL.Path + "?" + r.URL.RawQuery
		},
	}
	for name, set := range cases {
		for _, parsed := range []bool{false, true} {
			logged.Reset()
			r := httptest.NewRequest("GET", "/devices/1", nil)
			r.Header.Set("Accept", "application/json")
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") // another scheme's: kept
			set(r)
			before := r.Header.Clone()
			uri, raw := r.RequestURI, r.URL.RawQuery
			w := httptest.NewRecorder()
			if parsed {
				parseFirst.ServeHTTP(w, r)
			} else {
				mux.ServeHTTP(w, r)
			}
			require.Equal(t, 200, w.Code, "%s: %s", name, w.Body)
			assert.Contains(t, logged.String(), "Basic dXNlcjpwYXNz", "%s: another scheme's credential is kept", name)
			assert.NotContains(t, logged.String(), tok, "%s (form parsed %v): the handler saw the token", name, parsed)
			assert.Contains(t, logged.String(), "application/json", name)
			assert.Equal(t, before, r.Header, "%s: the caller's header map changed", name)
			assert.Equal(t, uri, r.RequestURI, name)
			assert.Equal(t, raw, r.URL.RawQuery, name)
			if name == "query" {
				assert.Contains(t, logged.String(), "/devices/1?a=1&b=2", "the other parameters stay")
			}
		}
	}

	logged.Reset()
	r := httptest.NewRequest("GET", "/forward/devices/1", nil)
	r.Header.Set("X-API-Key", tok)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	require.Equal(t, 200, w.Code)
	assert.Contains(t, logged.String(), tok, "WithForwardCredential passes it on")
}

// A user token narrowed to "ro", of a user who is "admin", acts as "ro":
// RequireRole("ro") passes, RequireRole("admin") does not, and the
// principal's Access agrees.
func TestNarrowedUserTokenRequireRole(t *testing.T) {
	m := newMW(t, testPolicy())
	m.dir.Set("u1", "org_1", apitoken.Membership{Roles: []string{"admin"}})
	spec := userSpec("u1")
	spec.Roles = []string{"ro"}
	tok, _ := m.issue(t, spec)
	var seen *apitoken.Principal
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = httpauth.PrincipalFrom(r.Context())
		w.WriteHeader(204)
	})
	mux := http.NewServeMux()
	mux.Handle("/ro/", m.mw.Wrap(m.mw.RequireRole("ro")(ok)))
	mux.Handle("/admin/", m.mw.Wrap(m.mw.RequireRole("admin")(ok)))
	mux.Handle("/devices/", m.mw.Wrap(m.mw.RequireAccess("devices", apitoken.AccessFull)(ok)))
	call := func(method, target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Org", "org_1")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	require.Equal(t, 204, call("GET", "/ro/x").Code, "RequireRole(ro)")
	require.NotNil(t, seen)
	assert.True(t, seen.HasRole("ro"))
	assert.False(t, seen.HasRole("admin"))
	assert.Equal(t, apitoken.AccessRead, seen.Access("devices"))
	assert.Equal(t, apitoken.AccessRead, seen.Access("billing"))

	w := call("GET", "/admin/x")
	assert.Equal(t, 403, w.Code, "RequireRole(admin)")
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope"`, challenge(w))
	o := m.lastOutcome()
	assert.ErrorIs(t, o.Err, apitoken.ErrForbidden)
	assert.NotEmpty(t, o.TokenID)

	w = call("GET", "/devices/x")
	assert.Equal(t, 403, w.Code, "RequireAccess(devices, full)")
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope", scope="devices:full"`, challenge(w))
	assert.Equal(t, 403, call("POST", "/ro/x").Code, "the middleware's own check: POST needs full")
}
