package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/stores/memstore"
)

// These tests drive the example server over net/http, as a browser and an
// API client would. They never print a token: keys are compared with
// booleans only.

// faultStore is a memstore whose reads fail while down is set, as a
// database that stopped answering.
type faultStore struct {
	apitoken.Store
	down atomic.Bool
}

var errDown = errors.New("faultstore: connection refused")

func (s *faultStore) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, id)
}

func (s *faultStore) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.GetByHash(ctx, h)
}

func (s *faultStore) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	if s.down.Load() {
		return apitoken.Page{}, errDown
	}
	return s.Store.List(ctx, f)
}

// fixture is a server over a faultStore with a fake clock and a
// management token.
type fixture struct {
	t     *testing.T
	srv   *server
	clock *apitokentest.Clock
	store *faultStore
	key   string // the management token
	keyID string
}

func newFixture(t *testing.T, o options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: apitokentest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)),
		store: &faultStore{Store: memstore.New()}}
	o.now = f.clock.Now
	srv, err := newServer(f.store, o)
	require.NoError(t, err)
	t.Cleanup(func() { srv.v.Close(context.Background()) })
	f.srv = srv
	f.key, f.keyID = f.issue("admin", "token-admin", "reader")
	return f
}

// issue issues an org token of the demo org and returns its key and ID.
func (f *fixture) issue(name string, roles ...string) (key, id string) {
	secret, tok, err := f.srv.iss.Issue(f.t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: org, Name: name, Roles: roles})
	require.NoError(f.t, err)
	return secret.Reveal(), tok.ID
}

// serve sends r to the server.
func (f *fixture) serve(r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w.Result()
}

// get and post send a request to target (a path, or a URL for https) with
// the cookies; post sends form as a form body.
func (f *fixture) get(target string, cookies ...*http.Cookie) *http.Response {
	return f.serve(request(http.MethodGet, target, nil, cookies))
}

func (f *fixture) post(target string, form url.Values, cookies ...*http.Cookie) *http.Response {
	return f.serve(request(http.MethodPost, target, form, cookies))
}

func request(method, target string, form url.Values, cookies []*http.Cookie) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

// signIn signs in with the management token and returns the session cookie.
func (f *fixture) signIn() *http.Cookie {
	f.t.Helper()
	res := f.post("/login", url.Values{"token": {f.key}})
	require.Equal(f.t, http.StatusSeeOther, res.StatusCode, "sign in")
	require.Equal(f.t, home, res.Header.Get("Location"))
	c := cookie(res, sessionCookie)
	require.NotNil(f.t, c, "no session cookie")
	return c
}

func cookie(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

// signedOutTo checks that res ends the session for the reason flash: a
// redirect to /login that clears the session cookie, and a sign-in page
// that says why.
func (f *fixture) signedOutTo(res *http.Response, flash string) {
	f.t.Helper()
	require.Equal(f.t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(f.t, "/login", res.Header.Get("Location"))
	if c := cookie(res, sessionCookie); assert.NotNil(f.t, c, "session cookie not cleared") {
		assert.Negative(f.t, c.MaxAge)
	}
	fc := cookie(res, flashCookie)
	require.NotNil(f.t, fc, "no flash")
	res = f.get("/login", fc)
	assert.Contains(f.t, body(f.t, res), flashText(flash))
	if c := cookie(res, flashCookie); assert.NotNil(f.t, c, "the flash is shown once") {
		assert.Negative(f.t, c.MaxAge, "the flash is shown once")
	}
}

func TestSessionCookieIsRandomNotTheKey(t *testing.T) {
	f := newFixture(t, options{})
	a, b := f.signIn(), f.signIn()
	assert.False(t, a.Value == b.Value, "two sign-ins, one session ID")
	for _, c := range []*http.Cookie{a, b} {
		assert.False(t, strings.Contains(c.Value, f.key) || strings.Contains(f.key, c.Value), "the cookie holds the key")
		assert.GreaterOrEqual(t, len(c.Value), 26, "session ID of 130 random bits")
		assert.True(t, c.HttpOnly)
		assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
		assert.Equal(t, consolePath, c.Path)
		assert.Equal(t, int(sessionTTL/time.Second), c.MaxAge)
		res := f.get(home, c)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Contains(t, body(t, res), "API tokens of "+org)
	}

	// The old cookie held the key: a key in the cookie is no session.
	f.signedOutTo(f.get(home, &http.Cookie{Name: sessionCookie, Value: f.key}), flashEnded)
}

func TestSecureCookie(t *testing.T) {
	for _, tc := range []struct {
		name      string
		target    string
		behindTLS bool
		want      bool
	}{
		{"plain HTTP", "http://example.com/login", false, false},
		{"over TLS", "https://example.com/login", false, true},
		{"behind a TLS proxy", "http://example.com/login", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, options{behindTLS: tc.behindTLS})
			res := f.post(tc.target, url.Values{"token": {f.key}})
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			c := cookie(res, sessionCookie)
			require.NotNil(t, c)
			assert.Equal(t, tc.want, c.Secure, "Secure")

			res = f.post(strings.Replace(tc.target, "/login", signOutPath, 1), nil, c)
			flash := cookie(res, flashCookie)
			require.NotNil(t, flash, "no flash")
			assert.Equal(t, tc.want, flash.Secure, "flash Secure")
		})
	}
}

func TestSignOutEndsTheSession(t *testing.T) {
	f := newFixture(t, options{})
	c := f.signIn()
	res := f.get(signOutPath, c)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body(t, res), `action="`+signOutPath+`"`)

	f.signedOutTo(f.post(signOutPath, nil, c), flashSignedOut)
	f.signedOutTo(f.get(home, c), flashEnded) // the old cookie is dead on the server too
}

func TestSessionEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		do    func(f *fixture) error
		flash string
	}{
		{"key revoked", func(f *fixture) error { return f.srv.iss.Revoke(f.t.Context(), f.keyID) }, flashRevoked},
		{"key deleted", func(f *fixture) error { return f.srv.iss.Delete(f.t.Context(), f.keyID) }, flashRevoked},
		{"key edited", func(f *fixture) error {
			name := "renamed"
			_, err := f.srv.iss.Update(f.t.Context(), f.keyID, apitoken.Patch{Name: &name})
			return err
		}, flashChanged},
		{"session expired", func(f *fixture) error { f.clock.Advance(sessionTTL); return nil }, flashEnded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, options{})
			c := f.signIn()
			require.Equal(t, http.StatusOK, f.get(home, c).StatusCode)
			require.NoError(t, tc.do(f))
			f.signedOutTo(f.get(home, c), tc.flash)
			f.signedOutTo(f.get(home, c), flashEnded)
		})
	}
}

// TestRevokeAllSaysWhatHappened: a Revoke all that revokes the key the
// manager signed in with says how many it revoked, and its Sign in link
// ends the session and says why.
func TestRevokeAllSaysWhatHappened(t *testing.T) {
	f := newFixture(t, options{})
	f.issue("demo", "reader")
	c := f.signIn()
	res := f.post(home+"revoke-all", url.Values{}, c)
	require.Equal(t, http.StatusOK, res.StatusCode)
	page := body(t, res)
	assert.Contains(t, page, "2 tokens revoked")
	assert.Contains(t, page, `href="`+signInPath+`"`)

	f.signedOutTo(f.get(signInPath, c), flashRevoked)
	f.signedOutTo(f.get(home, c), flashEnded)
}

func TestLoginIsThrottled(t *testing.T) {
	f := newFixture(t, options{})
	wrong := url.Values{"token": {"demo_notAToken"}}
	for range loginFailures.Burst {
		res := f.post("/login", wrong)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Contains(t, body(t, res), "not a working management token")
	}
	res := f.post("/login", wrong)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.Equal(t, "60", res.Header.Get("Retry-After"))
	assert.Contains(t, body(t, res), "Too many failed sign-ins from your address: try again in 60 seconds.")
	res = f.post("/login", url.Values{"token": {f.key}})
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode, "the right key while throttled")

	other := request(http.MethodPost, "/login", url.Values{"token": {f.key}}, nil)
	other.RemoteAddr = "198.51.100.7:4321"
	assert.Equal(t, http.StatusSeeOther, f.serve(other).StatusCode, "another client")

	f.clock.Advance(time.Minute)
	f.signIn()
}

func TestLoginSaysWhyNot(t *testing.T) {
	f := newFixture(t, options{})
	reader, _ := f.issue("demo", "reader")

	res := f.post("/login", url.Values{"token": {reader}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, body(t, res), "may not manage tokens")

	for range policy.OrgRateLimit.Burst { // the key's API budget, spent on the API
		r := request(http.MethodGet, "/devices", nil, nil)
		r.Header.Set("Authorization", "Bearer "+f.key)
		require.Equal(t, http.StatusOK, f.serve(r).StatusCode)
	}
	res = f.post("/login", url.Values{"token": {f.key}})
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	assert.Contains(t, body(t, res), "This token has used up its rate limit: try again in 1 second.")
}

func TestConsolePagesHaveSafetyHeaders(t *testing.T) {
	f := newFixture(t, options{})
	wrong := url.Values{"token": {"demo_notAToken"}}
	for _, tc := range []struct {
		name string
		res  func() *http.Response
		want int
	}{
		{"sign-in page", func() *http.Response { return f.get("/login") }, http.StatusOK},
		{"failed sign-in", func() *http.Response { return f.post("/login", wrong) }, http.StatusUnauthorized},
		{"throttled sign-in", func() *http.Response {
			for range loginFailures.Burst {
				f.post("/login", wrong)
			}
			return f.post("/login", wrong)
		}, http.StatusTooManyRequests},
		{"cross-site sign-in", func() *http.Response {
			r := request(http.MethodPost, "/login", url.Values{"token": {f.key}}, nil)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return f.serve(r)
		}, http.StatusForbidden},
		{"sign-out page", func() *http.Response { return f.get(signOutPath) }, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res()
			require.Equal(t, tc.want, res.StatusCode)
			assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
			assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'self'")
			assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
		})
	}
}

func TestStoreDownSaysSo(t *testing.T) {
	f := newFixture(t, options{})
	c := f.signIn()
	f.store.down.Store(true)

	res := f.get(home, c)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	page := body(t, res)
	assert.Contains(t, page, msgUnavailable)
	assert.NotContains(t, page, "Sign in")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))

	res = f.post("/login", url.Values{"token": {f.key}})
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body(t, res), msgUnavailable)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))

	f.store.down.Store(false)
	assert.Equal(t, http.StatusOK, f.get(home, c).StatusCode, "the session outlives the outage")
}

func TestBrowsingSpendsNoAPIBudget(t *testing.T) {
	f := newFixture(t, options{})
	c := f.signIn() // one use of the key
	for range 3 * policy.OrgRateLimit.Burst {
		require.Equal(t, http.StatusOK, f.get(home, c).StatusCode)
	}
	r := request(http.MethodGet, "/api/v1/orgs/"+org+"/apitokens", nil, nil)
	r.Header.Set("Authorization", "Bearer "+f.key)
	res := f.serve(r)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("RateLimit"), `"default";r=8;`, "burst 10, less the sign-in and this call")

	require.NoError(t, f.srv.v.Close(t.Context())) // writes the key's last use
	tok, err := f.srv.iss.Get(t.Context(), f.keyID)
	require.NoError(t, err)
	require.False(t, tok.LastUsedAt.IsZero())
	assert.Equal(t, http.StatusOK, f.get(home, c).StatusCode, "using the key on the API leaves the session")
}

func TestOpenAPIDocumentNeedsNoToken(t *testing.T) {
	f := newFixture(t, options{})
	res := f.get("/api/v1/openapi.json")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var doc struct{ OpenAPI string }
	require.NoError(t, json.Unmarshal([]byte(body(t, res)), &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3.1"), "openapi %q", doc.OpenAPI)

	assert.Equal(t, http.StatusUnauthorized, f.get("/api/v1/orgs/"+org+"/apitokens").StatusCode, "the API still needs a token")
	assert.Equal(t, http.StatusUnauthorized, f.post("/api/v1/openapi.json", nil).StatusCode, "only GET is open")
}
