package adminui_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/apitokentest"
)

const orgPage = prefix + "/orgs/" + apitokentest.DefaultOrg + "/"

var keyField = regexp.MustCompile(`id="new-key" class="key" type="text" readonly value="([^"]+)"`)

// shownKey returns the key a page shows once, or "".
func shownKey(body string) string {
	if m := keyField.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

func createForm(name string, extra url.Values) url.Values {
	f := url.Values{"name": {name}, "description": {"made by a test"}, "lifetime": {"6mo"}, "access.*": {"none"}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func TestCreateShowsTheKeyOnce(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	alice := h.client(t, "alice")
	resp := h.do(t, alice, http.MethodPost, orgPage+"new", createForm("deploy", url.Values{
		"access.billing": {"read"}, "access.devices": {"full"}}))
	require.Equal(t, http.StatusCreated, resp.status, resp.body)
	key := shownKey(resp.body)
	require.NotEmpty(t, key, "the create response shows the key")
	assert.Contains(t, resp.body, "It will not be shown again.")
	assert.Equal(t, "no-store", resp.header.Get("Cache-Control"))
	assert.Contains(t, resp.header.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Contains(t, resp.body, `data-key-page="`+orgPage+`"`, "the page's script replaces its history entry with the list")

	page, err := h.kit.Issuer.List(t.Context(), apitoken.Filter{Owner: apitoken.OrgOwner(apitokentest.DefaultOrg)})
	require.NoError(t, err)
	require.Len(t, page.Tokens, 1)
	tok := page.Tokens[0]
	assert.Equal(t, apitoken.Grants{"billing": apitoken.AccessRead, "devices": apitoken.AccessFull}, tok.Grants)
	assert.Equal(t, apitoken.Months(6).ExpiresAt(tok.IssuedAt), tok.ExpiresAt)
	assert.Equal(t, "user:alice", tok.CreatedBy)

	// The key works as the grid said: Read on billing, Full on devices.
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/billing", key))
	assert.Equal(t, http.StatusForbidden, h.use(t, http.MethodPost, "/billing", key))
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodPost, "/devices", key))

	// Afterwards only the hint is shown.
	list := h.do(t, alice, http.MethodGet, orgPage, nil)
	require.Equal(t, http.StatusOK, list.status)
	assert.Contains(t, list.body, tok.Hint)
	noKey(t, list.body, key, "no key here")
	assert.Empty(t, shownKey(list.body))
}

func TestApplyToAllAPIs(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	alice := h.client(t, "alice")
	// All APIs Read, billing raised to Full, devices lowered to none.
	resp := h.do(t, alice, http.MethodPost, orgPage+"new", createForm("all", url.Values{
		"access.*": {"read"}, "access.billing": {"full"}, "access.devices": {"none"}}))
	require.Equal(t, http.StatusCreated, resp.status, resp.body)
	page, err := h.kit.Issuer.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Tokens, 1)
	assert.Equal(t, apitoken.Grants{"*": apitoken.AccessRead, "billing": apitoken.AccessFull, "devices": apitoken.AccessNone}, page.Tokens[0].Grants)

	edit := h.do(t, alice, http.MethodGet, orgPage+page.Tokens[0].ID+"/edit", nil)
	require.Equal(t, http.StatusOK, edit.status)
	for _, id := range []string{"access-all-read", "access-billing-full", "access-devices-none"} {
		assert.Regexp(t, `id="`+id+`"[^>]* checked>`, edit.body, "the edit form shows the levels it was created with")
	}
}

func TestCrossSitePostIsRejected(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	key := h.kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "victim", Roles: []string{"reader"}})
	alice := h.client(t, "alice")
	for name, hdr := range map[string]http.Header{
		"Sec-Fetch-Site": {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}},
		"Origin only":    {"Origin": {"http://evil.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.srv.URL+orgPage+"revoke-all", strings.NewReader(""))
			require.NoError(t, err)
			req.Header = hdr.Clone()
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := alice.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/devices", key), "the token still works")
		})
	}
	assert.Empty(t, h.audited(apitoken.EventRevokedAll))
}

func TestRejectedManagerSeesNoToken(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	_, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "secret-project"})
	_, mine := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "alice", Name: "alice-laptop"})
	for _, c := range []struct {
		who, path string
		status    int
	}{
		{"", orgPage, http.StatusUnauthorized},
		{"mallory", orgPage, http.StatusForbidden},
		{"bob", orgPage, http.StatusForbidden},
		{"bob", prefix + "/", http.StatusForbidden},
		{"bob", orgPage + tok.ID + "/edit", http.StatusForbidden},
		{"alice", prefix + "/users/carol/", http.StatusForbidden},
		{"alice", prefix + "/" + tok.ID + "/edit", http.StatusNotFound}, // an org token is not in her own scope
	} {
		resp := h.do(t, h.client(t, c.who), http.MethodGet, c.path, nil)
		assert.Equal(t, c.status, resp.status, "%s GET %s", c.who, c.path)
		for _, leak := range []string{tok.Name, tok.Hint, mine.Name, mine.Hint, tok.ID} {
			assert.NotContains(t, resp.body, leak, "%s GET %s", c.who, c.path)
		}
	}
	resp := h.do(t, h.client(t, "mallory"), http.MethodPost, orgPage+"revoke-all", url.Values{})
	assert.Equal(t, http.StatusForbidden, resp.status)
	assert.Empty(t, h.audited(apitoken.EventRevokedAll))
}

func TestPolicyErrorNextToTheField(t *testing.T) {
	pol := testPolicy()
	pol.AllowedLifetimes, pol.MaxLifetime = nil, apitoken.Months(12)
	h := newHost(t, pol)
	alice := h.client(t, "alice")

	form := h.do(t, alice, http.MethodGet, orgPage+"new", nil)
	require.Equal(t, http.StatusOK, form.status)
	assert.Contains(t, form.body, `id="lifetime-n"`, "without an allowed set the form asks for a number and a unit")
	assert.NotContains(t, form.body, `id="lifetime-none"`, "no expiry is not offered under a maximum lifetime")

	resp := h.do(t, alice, http.MethodPost, orgPage+"new", url.Values{"name": {"too long"}, "lifetime_n": {"24"}, "lifetime_unit": {"months"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.status)
	errText := fieldError(t, resp.body, "lifetime")
	assert.Contains(t, errText, "12 months", "the error says the maximum in words")
	assert.Contains(t, resp.body, `value="24"`, "what was entered stays")
	assert.Equal(t, "too long", inputValue(resp.body, "name"))

	resp = h.do(t, alice, http.MethodPost, orgPage+"new", url.Values{"name": {" "}, "lifetime_n": {"3"}, "lifetime_unit": {"months"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.status)
	assert.Equal(t, "Give the token a name.", fieldError(t, resp.body, "name"))

	resp = h.do(t, alice, http.MethodPost, orgPage+"new", url.Values{"name": {"x"}, "lifetime_n": {"ten"}, "lifetime_unit": {"days"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.status)
	assert.Equal(t, "Enter a whole number of days, 1 or more.", fieldError(t, resp.body, "lifetime"))

	page, err := h.kit.Issuer.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	assert.Empty(t, page.Tokens, "a refused form creates nothing")
}

// fieldError returns the text of the error shown for field, which must
// sit inside the field's own control group.
func fieldError(t *testing.T, body, field string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<p class="field-error" id="` + regexp.QuoteMeta(field) + `-error">([^<]*)</p>`).FindStringSubmatchIndex(body)
	require.NotNil(t, m, "no error shown for %s", field)
	// The nearest opening group before the error is the field's own.
	before := body[:m[0]]
	open := max(strings.LastIndex(before, "<fieldset"), strings.LastIndex(before, `<div class="field"`))
	require.GreaterOrEqual(t, open, 0)
	group := before[open:]
	assert.True(t, strings.Contains(group, `id="`+field+`"`) || strings.Contains(group, `name="`+field), "the %s error is in the %s group: %s", field, field, group)
	return body[m[2]:m[3]]
}

func inputValue(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]* value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestExpiredTokensOfferOnlyDelete(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	_, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "old", Lifetime: apitoken.Months(3)})
	h.kit.Clock.Advance(100 * 24 * time.Hour)
	alice := h.client(t, "alice")

	list := h.do(t, alice, http.MethodGet, orgPage, nil)
	require.Equal(t, http.StatusOK, list.status)
	assert.Contains(t, list.body, "You cannot modify expired tokens.")
	for _, action := range []string{"edit", "regenerate", "revoke"} {
		assert.NotContains(t, list.body, tok.ID+"/"+action, "an expired token offers no %s", action)
		get := h.do(t, alice, http.MethodGet, orgPage+tok.ID+"/"+action, nil)
		assert.Equal(t, http.StatusConflict, get.status, action)
		assert.Contains(t, get.body, "You cannot modify expired tokens")
	}
	post := h.do(t, alice, http.MethodPost, orgPage+tok.ID+"/regenerate", url.Values{"lifetime": {"12mo"}})
	assert.Equal(t, http.StatusConflict, post.status)
	assert.Empty(t, shownKey(post.body))

	del := h.do(t, alice, http.MethodPost, orgPage+tok.ID+"/delete", url.Values{})
	require.Equal(t, http.StatusSeeOther, del.status)
	assert.Equal(t, orgPage+"?done=deleted", del.header.Get("Location"))
	_, err := h.kit.Issuer.Get(t.Context(), tok.ID)
	assert.ErrorIs(t, err, apitoken.ErrNotFound)
}

func TestEditRegenerateRevoke(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	oldKey, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "ci", Roles: []string{"reader"}})
	alice := h.client(t, "alice")
	base := orgPage + tok.ID

	edit := h.do(t, alice, http.MethodGet, base+"/edit", nil)
	require.Equal(t, http.StatusOK, edit.status)
	assert.Contains(t, edit.body, `<option value="keep" selected>`, "an edit keeps the expiry unless told otherwise")
	resp := h.do(t, alice, http.MethodPost, base+"/edit", url.Values{"version": {"1"}, "name": {"ci-2"}, "description": {"renamed"},
		"role": {"admin"}, "access.*": {"none"}, "resources": {"site-1\r\nsite-2"}, "lifetime": {"keep"}, "ip_filter": {"office"}})
	require.Equal(t, http.StatusSeeOther, resp.status, resp.body)
	got, err := h.kit.Issuer.Get(t.Context(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, "ci-2", got.Name)
	assert.Equal(t, []string{"admin"}, got.Roles)
	assert.Equal(t, []string{"site-1", "site-2"}, got.Resources)
	assert.Equal(t, "office", got.IPFilter.Name)
	assert.Equal(t, tok.ExpiresAt, got.ExpiresAt, "kept")

	stale := h.do(t, alice, http.MethodPost, base+"/edit", url.Values{"version": {"1"}, "name": {"lost"}, "lifetime": {"keep"}})
	assert.Equal(t, http.StatusConflict, stale.status, "a form from before the last write changes nothing")
	assert.Contains(t, stale.body, "changed meanwhile")

	regen := h.do(t, alice, http.MethodPost, base+"/regenerate", url.Values{"lifetime": {"12mo"}})
	require.Equal(t, http.StatusOK, regen.status, regen.body)
	newKey := shownKey(regen.body)
	require.NotEmpty(t, newKey)
	assert.True(t, oldKey != newKey, "a new key") // keys stay out of test output
	assert.Equal(t, "no-store", regen.header.Get("Cache-Control"))
	got, err = h.kit.Issuer.Get(t.Context(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, apitoken.Months(12).ExpiresAt(h.kit.Clock.Now()), got.ExpiresAt)
	assert.Equal(t, http.StatusUnauthorized, h.use(t, http.MethodGet, "/devices", oldKey))
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/devices", newKey))

	confirm := h.do(t, alice, http.MethodGet, base+"/revoke", nil)
	require.Equal(t, http.StatusOK, confirm.status)
	assert.Contains(t, confirm.body, "Revoke the token “ci-2”")
	revoke := h.do(t, alice, http.MethodPost, base+"/revoke", url.Values{})
	require.Equal(t, http.StatusSeeOther, revoke.status)
	assert.Equal(t, http.StatusUnauthorized, h.use(t, http.MethodGet, "/devices", newKey))
	list := h.do(t, alice, http.MethodGet, orgPage+"?done=revoked", nil)
	assert.Contains(t, list.body, "Token revoked.")
	assert.Contains(t, list.body, "You cannot modify revoked tokens.")
	for _, e := range h.audited(apitoken.EventRevoked) {
		assert.Equal(t, "user:alice", e.Actor)
	}
}

func TestRevealIsAudited(t *testing.T) {
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	h := newHost(t, apitoken.Policy{}, apitoken.WithSealKeys(sealKey))
	alice := h.client(t, "alice")
	created := h.do(t, alice, http.MethodPost, orgPage+"new", createForm("recoverable", nil))
	require.Equal(t, http.StatusCreated, created.status)
	key := shownKey(created.body)
	page, err := h.kit.Issuer.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	id := page.Tokens[0].ID

	list := h.do(t, alice, http.MethodGet, orgPage, nil)
	assert.Contains(t, list.body, `data-reveal="`+orgPage+id+`/reveal"`, "a recoverable token has a Show button")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.srv.URL+orgPage+id+"/reveal", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := alice.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Key string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	sameKey(t, key, body.Key, "the key")
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	events := h.audited(apitoken.EventRecovered)
	require.Len(t, events, 1)
	assert.Equal(t, "user:alice", events[0].Actor)
	assert.Equal(t, id, events[0].TokenID)
}

func TestNewErrors(t *testing.T) {
	kit := apitokentest.New(t)
	hook := func(*http.Request) (*adminapi.Manager, error) { return nil, adminapi.ErrUnauthenticated }
	for name, c := range map[string]struct {
		iss  *apitoken.Issuer
		hook func(*http.Request) (*adminapi.Manager, error)
		opts []adminui.Option
		want string
	}{
		"nil Issuer":        {nil, hook, nil, "nil Issuer"},
		"nil hook":          {kit.Issuer, nil, nil, "nil authorization hook"},
		"nil option":        {kit.Issuer, hook, []adminui.Option{nil}, "nil Option"},
		"prefix with slash": {kit.Issuer, hook, []adminui.Option{adminui.WithPrefix("/tokens/")}, "WithPrefix"},
		"relative prefix":   {kit.Issuer, hook, []adminui.Option{adminui.WithPrefix("tokens")}, "WithPrefix"},
		"pattern prefix":    {kit.Issuer, hook, []adminui.Option{adminui.WithPrefix("/{org}")}, "WithPrefix"},
		"foreign sheet":     {kit.Issuer, hook, []adminui.Option{adminui.WithStylesheet("https://cdn.example/x.css")}, "WithStylesheet"},
		"empty title":       {kit.Issuer, hook, []adminui.Option{adminui.WithTitle(" ")}, "WithTitle"},
		"repeated API":      {kit.Issuer, hook, []adminui.Option{adminui.WithAPIs(adminui.API{Name: "a"}, adminui.API{Name: "a"})}, "WithAPIs"},
		"star API":          {kit.Issuer, hook, []adminui.Option{adminui.WithAPIs(adminui.API{Name: "*"})}, "WithAPIs"},
		"nil protection":    {kit.Issuer, hook, []adminui.Option{adminui.WithCrossOriginProtection(nil)}, "WithCrossOriginProtection"},
		"foreign sign-in":   {kit.Issuer, hook, []adminui.Option{adminui.WithSignIn("//evil.example/login")}, "WithSignIn"},
		"backslash sign-in": {kit.Issuer, hook, []adminui.Option{adminui.WithSignIn(`/\evil.example`)}, "WithSignIn"},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := adminui.New(c.iss, c.hook, c.opts...)
			require.ErrorContains(t, err, c.want)
			assert.Nil(t, h)
		})
	}
}

func TestAssetsAndHeaders(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	anon := h.client(t, "")
	for path, ctype := range map[string]string{prefix + "/assets/console.css": "text/css", prefix + "/assets/console.js": "text/javascript"} {
		resp := h.do(t, anon, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, resp.status, path)
		assert.True(t, strings.HasPrefix(resp.header.Get("Content-Type"), ctype), path)
	}
	page := h.do(t, h.client(t, "alice"), http.MethodGet, orgPage, nil)
	require.Equal(t, http.StatusOK, page.status)
	assert.Equal(t, "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'; object-src 'none'", page.header.Get("Content-Security-Policy"))
	assert.Equal(t, "nosniff", page.header.Get("X-Content-Type-Options"))
	assert.NotRegexp(t, `<script>|<style>| style="| on[a-z]+="`, page.body, "no inline script or style: the CSP would block it")
	assert.Contains(t, page.body, `<title>API tokens of org_1 · Acme</title>`)
	assert.Equal(t, http.StatusNotFound, h.do(t, anon, http.MethodGet, prefix+"/assets/other.js", nil).status)
}

func TestSignInLink(t *testing.T) {
	kit := apitokentest.New(t)
	ui, err := adminui.New(kit.Issuer, authorize, adminui.WithSignIn("/login?next=%2Fsettings"))
	require.NoError(t, err)
	w := httptest.NewRecorder()
	ui.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Body.String(), `<a class="button primary" href="/login?next=%2Fsettings">Sign in</a>`)
}
