package httpauth_test

// Tests that perform the attacks issue 10 names, each against the
// middleware's defaults or the trust a host declared.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"path"
	"strings"
	"sync"
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

// Checklist item 23: forged forwarding headers change neither the IP
// filter's decision nor the client a failed authentication is charged to.

const (
	spoofAttacker = "198.51.100.7" // outside the office
	spoofOffice   = "203.0.113.9"  // inside officeSpec's 203.0.113.0/24
	spoofVictim   = "192.0.2.50"   // another client, whose budget the attacker goes after
	spoofProxy    = "172.16.0.1"   // the host's proxy, when it declares one
)

// spoofHeaders are the forwarding headers a client may forge; the
// middleware reads at most the one its host declared.
var spoofHeaders = []string{"X-Forwarded-For", "X-Real-Ip", "True-Client-Ip", "Forwarded", "Cf-Connecting-Ip", "X-Client-Ip", "Fly-Client-Ip"}

// spoofValue returns a forged address for a forwarding header: one the
// office filter allows, the victim's, the proxy's own range, mapped,
// with ports, lists, IPv6, or garbage.
func spoofValue(r *rand.Rand) string {
	switch r.IntN(10) {
	case 0:
		return fmt.Sprintf("203.0.113.%d", r.IntN(256))
	case 1:
		return spoofVictim
	case 2:
		return fmt.Sprintf("172.16.%d.%d", r.IntN(256), r.IntN(256))
	case 3:
		return "::ffff:" + spoofOffice
	case 4:
		return spoofOffice + ":443"
	case 5:
		return fmt.Sprintf("%s, 203.0.113.%d, %s", spoofVictim, r.IntN(256), spoofProxy)
	case 6:
		return fmt.Sprintf("[2001:db8::%x]:80", r.IntN(1<<16))
	case 7:
		return fmt.Sprintf("%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256))
	case 8:
		return []string{"unknown", "_hidden", "", "nonsense", "203.0.113.9%eth0"}[r.IntN(5)]
	}
	return "10.0.0.1"
}

// spoof adds forged forwarding headers to h: a random non-empty subset of
// spoofHeaders, each with one or two lines.
func spoof(r *rand.Rand, h http.Header) {
	for {
		for _, name := range spoofHeaders {
			if r.IntN(3) > 0 {
				continue
			}
			for range 1 + r.IntN(2) {
				v := spoofValue(r)
				if name == "Forwarded" {
					v = fmt.Sprintf("for=%q", v)
				}
				h[name] = append(h[name], v)
			}
		}
		if len(h) > 0 {
			return
		}
	}
}

// spoofEnv is an mwEnv whose observer records every outcome.
type spoofEnv struct {
	*mwEnv
	mu   sync.Mutex
	seen []httpauth.Outcome
}

func newSpoofEnv(t *testing.T, opts ...httpauth.Option) *spoofEnv {
	e := &spoofEnv{}
	opts = append(opts, httpauth.WithObserver(func(_ *http.Request, o httpauth.Outcome) {
		e.mu.Lock()
		e.seen = append(e.seen, o)
		e.mu.Unlock()
	}))
	e.mwEnv = newMW(t, testPolicy(), opts...)
	return e
}

// send serves GET /devices/1 with token from peer (an address without a
// port) with header, and returns the status and the client address the
// middleware decided on.
func (e *spoofEnv) send(t *testing.T, peer, token string, header http.Header) (int, netip.Addr) {
	t.Helper()
	r := httptest.NewRequest("GET", "/devices/1", nil)
	r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(peer), 40000).String()
	r.Header = header
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("X-Org", "org_1")
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(t, e.seen, "no outcome observed")
	o := e.seen[len(e.seen)-1]
	e.seen = e.seen[:0]
	return w.Code, o.ClientIP
}

// TestAttackSpoofedHeadersNoProxies: without WithTrustedProxies, 1,000
// requests with forged X-Forwarded-For, X-Real-IP, True-Client-IP,
// Forwarded and other headers, from a client outside the office and from
// one inside it, get the answer they get without the headers, and each is
// charged to its peer: 0/1,000 change the outcome.
func TestAttackSpoofedHeadersNoProxies(t *testing.T) {
	e := newSpoofEnv(t)
	office, _ := e.issue(t, officeSpec())
	r := rand.New(rand.NewPCG(23, 1))
	for _, c := range []struct {
		peer string
		want int
	}{{spoofAttacker, 403}, {spoofOffice, 200}} {
		status, ip := e.send(t, c.peer, office, http.Header{})
		require.Equal(t, c.want, status, "from %s without forged headers", c.peer)
		require.Equal(t, c.peer, ip.String())
		changed := 0
		for i := range 1000 {
			h := http.Header{}
			spoof(r, h)
			status, ip := e.send(t, c.peer, office, h)
			if status != c.want || ip.String() != c.peer {
				changed++
				if changed <= 3 {
					t.Errorf("from %s, request %d with %v: %d as %v, want %d as %s", c.peer, i, h, status, ip, c.want, c.peer)
				}
			}
		}
		assert.Zero(t, changed, "of 1,000 forged requests from %s, changed outcomes", c.peer)
	}
}

// TestAttackSpoofedHeadersBehindProxies: with trusted proxies, 1,000
// requests per declared header whose clients forge every forwarding header
// (the proxy then adds the real client as it does): the client address is
// the real one each time (the rightmost untrusted entry), and the office
// filter's decision is the real client's. A peer outside the trusted
// proxies is its own address whatever it sends, and X-Forwarded-For lines
// form one list.
func TestAttackSpoofedHeadersBehindProxies(t *testing.T) {
	proxies := []netip.Prefix{mustPrefix("172.16.0.0/12")}
	// add records the real client the way a proxy declaring header does,
	// on top of what the client sent.
	type proxyStyle struct {
		header string
		add    func(h http.Header, client string)
	}
	styles := map[string]proxyStyle{
		"XFF appended to the line": {"X-Forwarded-For", func(h http.Header, client string) {
			if v := h.Values("X-Forwarded-For"); len(v) > 0 {
				v[len(v)-1] += ", " + client
				return
			}
			h.Set("X-Forwarded-For", client)
		}},
		"XFF as a line of its own": {"X-Forwarded-For", func(h http.Header, client string) { h.Add("X-Forwarded-For", client) }},
		"XFF through two proxies": {"X-Forwarded-For", func(h http.Header, client string) {
			h.Add("X-Forwarded-For", client+", 172.16.9.9") // the edge proxy appends the client, the inner one the edge
		}},
		"Forwarded":          {"Forwarded", func(h http.Header, client string) { h.Add("Forwarded", "for="+client+";proto=https") }},
		"X-Real-IP set":      {"X-Real-IP", func(h http.Header, client string) { h.Set("X-Real-IP", client) }},
		"True-Client-IP set": {"True-Client-IP", func(h http.Header, client string) { h.Set("True-Client-IP", client) }},
	}
	for name, style := range styles {
		t.Run(name, func(t *testing.T) {
			e := newSpoofEnv(t, httpauth.WithTrustedProxies(style.header, proxies...))
			office, _ := e.issue(t, officeSpec())
			r := rand.New(rand.NewPCG(23, 2))
			changed := 0
			for i := range 1000 {
				client, want := spoofAttacker, 403
				if i%2 == 1 {
					client, want = spoofOffice, 200
				}
				h := http.Header{}
				spoof(r, h)
				sent := h.Clone()
				style.add(h, client)
				status, ip := e.send(t, spoofProxy, office, h)
				if status != want || ip.String() != client {
					changed++
					if changed <= 3 {
						t.Errorf("request %d from %s forging %v: %d as %v, want %d", i, client, sent, status, ip, want)
					}
				}
			}
			assert.Zero(t, changed, "of 1,000 forged requests through the proxy, changed outcomes")

			// A client that reaches the host directly is its peer, whatever
			// it sends.
			for range 100 {
				h := http.Header{}
				spoof(r, h)
				style.add(h, spoofOffice)
				status, ip := e.send(t, spoofAttacker, office, h)
				require.Equal(t, 403, status, "untrusted peer sending %v", h)
				require.Equal(t, spoofAttacker, ip.String())
			}
		})
	}

	// A single-IP header a proxy adds to instead of setting has two lines:
	// the address is unknown, and the filter denies.
	e := newSpoofEnv(t, httpauth.WithTrustedProxies("X-Real-IP", proxies...))
	office, _ := e.issue(t, officeSpec())
	status, ip := e.send(t, spoofProxy, office, http.Header{"X-Real-Ip": {spoofOffice, spoofAttacker}})
	assert.Equal(t, 403, status, "two X-Real-IP lines")
	assert.False(t, ip.IsValid(), "two X-Real-IP lines: %v", ip)
}

// TestAttackFailureBudgetSpoofing: the chi/httprate #61 attacks on the
// budget of failed authentications, which is keyed by client address. Evade:
// an attacker forging a fresh address in every header of each of 1,000
// forged tokens still gets only its own budget (100 lookups, 900 × 429).
// Lock out: an attacker forging the victim's address in every header
// spends only its own budget; the victim's is whole. Both without proxies
// and behind a trusted proxy (where the attacker sits behind it too).
func TestAttackFailureBudgetSpoofing(t *testing.T) {
	forged := forge(t, "acme", 1000)
	for _, behind := range []bool{false, true} {
		t.Run(fmt.Sprintf("behind proxy %v", behind), func(t *testing.T) {
			var opts []httpauth.Option
			if behind {
				opts = append(opts, httpauth.WithTrustedProxies("X-Forwarded-For", mustPrefix("172.16.0.0/12")))
			}
			// send sends a forged token from client with header; behind
			// the proxy, the proxy appends the client's address.
			send := func(e *spoofEnv, client, token string, h http.Header) (int, netip.Addr) {
				if !behind {
					return e.send(t, client, token, h)
				}
				h.Add("X-Forwarded-For", client)
				return e.send(t, spoofProxy, token, h)
			}
			r := rand.New(rand.NewPCG(61, 1))

			// Evade: a fresh forged address in every header, every request.
			e := newSpoofEnv(t, opts...)
			base := e.store.lookups.Load()
			statuses := map[int]int{}
			for _, f := range forged {
				h := http.Header{}
				addr := fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(222), r.IntN(256), r.IntN(256), r.IntN(256))
				for _, name := range spoofHeaders {
					h.Set(name, addr)
				}
				h.Set("Forwarded", "for="+addr)
				status, ip := send(e, spoofAttacker, f, h)
				statuses[status]++
				require.Equal(t, spoofAttacker, ip.String(), "the budget charged")
			}
			assert.Equal(t, map[int]int{401: httpauth.DefaultFailureBurst, 429: 1000 - httpauth.DefaultFailureBurst}, statuses, "evade")
			assert.Equal(t, int64(httpauth.DefaultFailureBurst), e.store.lookups.Load()-base, "store lookups for 1,000 forged tokens")

			// Lock out: the victim's address in every header.
			e = newSpoofEnv(t, opts...)
			good, _ := e.issue(t, orgSpec())
			for _, f := range forged {
				h := http.Header{"Forwarded": {"for=" + spoofVictim}}
				for _, name := range spoofHeaders[:3] {
					h.Set(name, spoofVictim)
				}
				status, _ := send(e, spoofAttacker, f, h)
				require.Contains(t, []int{401, 429}, status)
			}
			status, _ := send(e, spoofAttacker, good, http.Header{})
			assert.Equal(t, 429, status, "the attacker spent its own budget")
			for i := range httpauth.DefaultFailureBurst {
				status, ip := send(e, spoofVictim, forged[i], http.Header{})
				require.Equal(t, 401, status, "victim's failure %d: its budget is whole", i+1)
				require.Equal(t, spoofVictim, ip.String())
			}
			status, _ = send(e, spoofVictim, forged[0], http.Header{})
			assert.Equal(t, 429, status, "the victim's own 101st failure")
		})
	}
}

// An unparseable RemoteAddr (a Unix socket, a custom listener, a bad
// port) is an unknown client: a token with an IP filter is denied (403),
// one without is let through.
func TestUnparseableRemoteAddrDenies(t *testing.T) {
	m := newMW(t, testPolicy())
	office, _ := m.issue(t, officeSpec())
	open, _ := m.issue(t, orgSpec())
	for _, remote := range []string{"", "pipe", "@", "unix:/run/api.sock", "1.2.3.4:99999", "1.2.3.4:", "[::1", "::1]:80",
		"1.2.3.4:80:80", "256.1.1.1:80", "010.0.0.1:80", "0x7f.0.0.1:80", "1.2.3:80", "[1.2.3.4]:80", "203.0.113.9 :80"} {
		at := func(r *http.Request) { r.RemoteAddr = remote }
		m.drain()
		assert.Equal(t, 403, m.do("GET", "Bearer "+office, at).Code, "filtered token from RemoteAddr %q", remote)
		o := <-m.outcomes
		assert.False(t, o.ClientIP.IsValid(), "RemoteAddr %q read as %v", remote, o.ClientIP)
		assert.ErrorIs(t, o.Err, apitoken.ErrIPNotAllowed, remote)
		assert.Equal(t, 200, m.do("GET", "Bearer "+open, at).Code, "token without a filter from RemoteAddr %q", remote)
	}
	assert.Equal(t, 200, m.do("GET", "Bearer "+office, func(r *http.Request) { r.RemoteAddr = spoofOffice + ":1" }).Code, "the office itself")
}
