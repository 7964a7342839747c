package adminui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/apitokentest"
)

// prefix is where the test host mounts the console.
const prefix = "/settings/api-tokens"

// testPolicy is the products' policy: 3, 6 (default) or 12 months, a
// named office filter, two roles.
func testPolicy() apitoken.Policy {
	return apitoken.Policy{
		Prefix:           "acme",
		DefaultLifetime:  apitoken.Months(6),
		AllowedLifetimes: []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)},
		IPFilters:        map[string][]string{"office": {"192.0.2.0/24", "127.0.0.0/8", "::1/128"}},
		Roles: map[string]apitoken.Role{
			"reader": {Description: "Reads devices", Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"admin":  {Description: "Everything", Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}},
		},
	}
}

// host is a test application: the console at prefix over a Kit's Issuer,
// the Kit's middleware guarding /devices and /billing, and a cookie
// session naming the manager.
type host struct {
	kit *apitokentest.Kit
	srv *httptest.Server
	ui  *adminui.Handler

	mu       sync.Mutex
	events   []apitoken.Event
	sessions map[string]string // session ID → the key its manager signed in with
}

// Managers by session cookie: alice manages her own tokens and org_1's;
// bob may manage nothing; "mallory" is refused by the hook.
func managers() map[string]*adminapi.Manager {
	admin := &apitoken.Principal{Roles: []string{"admin"}, Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}}
	return map[string]*adminapi.Manager{
		"alice": {Actor: "user:alice", UserID: "alice", Privileges: admin, May: func(s adminapi.Scope) bool {
			return s.Self || s.Owner == apitoken.OrgOwner(apitokentest.DefaultOrg)
		}},
		"bob": {Actor: "user:bob", UserID: "bob", Privileges: admin},
	}
}

var errRefused = errors.New("test hook: refused")

func authorize(r *http.Request) (*adminapi.Manager, error) {
	c, err := r.Cookie("session")
	if err != nil {
		return nil, adminapi.ErrUnauthenticated
	}
	if m, ok := managers()[c.Value]; ok {
		return m, nil
	}
	return nil, errRefused
}

// signInWithKey returns a session ID whose manager is whoever key
// validates as (as a host whose managers sign in with a management token
// would do): the session ends when the key stops validating.
func (h *host) signInWithKey(t *testing.T, key string) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions == nil {
		h.sessions = map[string]string{}
	}
	id := "key-session-" + strconv.Itoa(len(h.sessions)+1)
	h.sessions[id] = key
	return id
}

// authorize is the host's hook: a session signed in with a key (see
// signInWithKey) is that token's manager, in its own org; any other
// session is one of managers().
func (h *host) authorize(r *http.Request) (*adminapi.Manager, error) {
	if c, err := r.Cookie("session"); err == nil {
		h.mu.Lock()
		key, ok := h.sessions[c.Value]
		h.mu.Unlock()
		if ok {
			p, err := h.kit.Validator.Validate(r.Context(), key, apitoken.Request{})
			if err != nil {
				return nil, fmt.Errorf("%w: %w", adminapi.ErrUnauthenticated, err)
			}
			return &adminapi.Manager{Actor: "token:" + p.TokenID, UserID: p.UserID, Privileges: p,
				May: func(s adminapi.Scope) bool { return s.Owner == apitoken.OrgOwner(p.OrgID) }}, nil
		}
	}
	return authorize(r)
}

// newHost starts a host with the policy pol (testPolicy if zero Prefix)
// and the Issuer options given.
func newHost(t *testing.T, pol apitoken.Policy, issOpts ...apitoken.IssuerOption) *host {
	t.Helper()
	if pol.Prefix == "" {
		pol = testPolicy()
	}
	h := &host{}
	issOpts = append(issOpts, apitoken.WithAudit(func(_ context.Context, e apitoken.Event) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, e)
	}))
	h.kit = apitokentest.New(t, apitokentest.WithPolicy(pol), apitokentest.WithIssuerOptions(issOpts...))
	h.kit.Users.Set("alice", apitokentest.DefaultOrg, apitoken.Membership{Roles: []string{"admin"}})
	ui, err := adminui.New(h.kit.Issuer, h.authorize, adminui.WithPrefix(prefix), adminui.WithClock(h.kit.Clock.Now), adminui.WithSignIn("/login"),
		adminui.WithTitle("Acme"), adminui.WithAPIs(adminui.API{Name: "billing", Title: "Billing"}, adminui.API{Name: "devices", Title: "Devices"}))
	require.NoError(t, err)
	h.ui = ui
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", ui)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok "+r.Method) })
	mw := h.kit.Middleware()
	for _, p := range []string{"/devices", "/billing"} {
		mux.Handle(p, mw.Wrap(api))
	}
	// The host's sign-in, for the browser: /login?as=alice&next=/path.
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: r.URL.Query().Get("as"), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, r.URL.Query().Get("next"), http.StatusSeeOther)
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// audited returns the events of type typ so far.
func (h *host) audited(typ apitoken.EventType) []apitoken.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(h.events), func(e apitoken.Event) bool { return e.Type != typ })
}

// client returns an HTTP client with the session cookie of who (none if
// empty) that does not follow redirects.
func (h *host) client(t *testing.T, who string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	if who != "" {
		u, _ := url.Parse(h.srv.URL)
		jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: who, Path: "/"}})
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// response is a finished exchange.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request as a browser on the console's own page would (a
// same-origin Sec-Fetch-Site on posts) with form as its body if not nil.
func (h *host) do(t *testing.T, c *http.Client, method, path string, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// use calls the host's API with key and returns the status.
func (h *host) use(t *testing.T, method, path, key string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := h.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// noKey asserts that s does not contain key, without printing either:
// keys stay out of test output even when a test fails.
func noKey(t *testing.T, s, key, msg string) {
	t.Helper()
	assert.False(t, strings.Contains(s, key), msg)
}

// sameKey asserts that got is key, without printing either.
func sameKey(t *testing.T, key, got, msg string) {
	t.Helper()
	assert.True(t, got == key, msg)
}
