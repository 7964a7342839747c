package adminui_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/apitokentest"
)

var (
	inputTag    = regexp.MustCompile(`<input\b([^>]*)>`)
	selectTag   = regexp.MustCompile(`(?s)<select\b([^>]*)>(.*?)</select>`)
	optionTag   = regexp.MustCompile(`<option\b([^>]*)>`)
	textareaTag = regexp.MustCompile(`(?s)<textarea\b([^>]*)>(.*?)</textarea>`)
	attribute   = regexp.MustCompile(`([a-z][a-z.*_-]*)(?:="([^"]*)")?`)
)

func attributes(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attribute.FindAllStringSubmatch(tag, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// formValues returns what a browser would post from the page's form as
// rendered, untouched: named inputs (checked ones for boxes and radios),
// each select's selected option, and textareas (whose first line break is
// the parser's, and whose line breaks a browser posts as CRLF).
func formValues(body string) url.Values {
	v := url.Values{}
	for _, m := range inputTag.FindAllStringSubmatch(body, -1) {
		a := attributes(m[1])
		name, ok := a["name"]
		if _, checked := a["checked"]; !ok || ((a["type"] == "radio" || a["type"] == "checkbox") && !checked) {
			continue
		}
		v.Add(name, a["value"])
	}
	for _, m := range selectTag.FindAllStringSubmatch(body, -1) {
		name, ok := attributes(m[1])["name"]
		if !ok {
			continue
		}
		opts := optionTag.FindAllStringSubmatch(m[2], -1)
		chosen := ""
		for i, o := range opts {
			a := attributes(o[1])
			if _, sel := a["selected"]; sel || i == 0 {
				chosen = a["value"]
			}
		}
		v.Set(name, chosen)
	}
	for _, m := range textareaTag.FindAllStringSubmatch(body, -1) {
		if name, ok := attributes(m[1])["name"]; ok {
			text := strings.TrimPrefix(html.UnescapeString(m[2]), "\n")
			v.Set(name, strings.ReplaceAll(text, "\n", "\r\n"))
		}
	}
	return v
}

// inlinePolicy is testPolicy with inline IP filters allowed, as a host
// whose API or CLI sets them would have.
func inlinePolicy() apitoken.Policy {
	pol := testPolicy()
	pol.AllowInlineIPFilter = true
	return pol
}

var (
	allowedIP = netip.MustParseAddr("192.0.2.7")
	otherIP   = netip.MustParseAddr("198.51.100.9")
)

// useFrom validates key for a read of devices from ip, as the host's
// middleware would for a request from that address.
func useFrom(t *testing.T, h *host, key string, ip netip.Addr) error {
	t.Helper()
	_, err := h.kit.Validator.Validate(t.Context(), key, apitoken.Request{IP: ip, API: "devices", Access: apitoken.AccessRead})
	return err
}

// TestEditKeepsWhatTheFormDoesNotShow is the attack of issue 20 §2: a
// token made through the API with an inline /32 filter and resource IDs
// with spaces and commas, renamed in the console, must keep its filter
// and its resources. It used to be widened to every address (the IP
// select offered only the policy's named filters, at "Any address") and
// its resources split at spaces and commas.
func TestEditKeepsWhatTheFormDoesNotShow(t *testing.T) {
	h := newHost(t, inlinePolicy())
	resources := []string{"site a", "b,c", " padded "}
	key, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "pinned",
		Roles: []string{"admin"}, Resources: resources, IPPrefixes: []string{allowedIP.String() + "/32"}})
	validate := func(ip netip.Addr) error { return useFrom(t, h, key, ip) }
	require.NoError(t, validate(allowedIP))
	require.ErrorIs(t, validate(otherIP), apitoken.ErrIPNotAllowed)

	alice := h.client(t, "alice")
	edit := h.do(t, alice, http.MethodGet, orgPage+tok.ID+"/edit", nil)
	require.Equal(t, http.StatusOK, edit.status)
	assert.Contains(t, edit.body, "<textarea id=\"ip-prefixes\" rows=\"1\" readonly aria-describedby=\"ip-prefixes-help\">\n192.0.2.7/32</textarea>",
		"the inline filter is shown, read only and not posted")
	assert.Contains(t, edit.body, "Set through the API or the command-line tool; saving here keeps them. Change them there.")

	form := formValues(edit.body)
	assert.Equal(t, "site a\r\nb,c\r\n padded ", form.Get("resources"), "one resource a line, as stored")
	form.Set("name", "pinned-renamed")
	resp := h.do(t, alice, http.MethodPost, orgPage+tok.ID+"/edit", form)
	require.Equal(t, http.StatusSeeOther, resp.status, resp.body)

	got, err := h.kit.Issuer.Get(t.Context(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, "pinned-renamed", got.Name)
	assert.Equal(t, "{ [192.0.2.7/32]}", fmt.Sprint(got.IPFilter), "the inline filter is kept")
	assert.Equal(t, resources, got.Resources, "the resources are kept")
	assert.ErrorIs(t, validate(otherIP), apitoken.ErrIPNotAllowed, "the renamed token still refuses another address")
	assert.NoError(t, validate(allowedIP))
	assert.Equal(t, http.StatusForbidden, h.use(t, http.MethodGet, "/devices", key), "nor does it work from the test's loopback address")
}

// TestEditKeepsAFilterThePolicyDropped renders a token whose named IP
// filter the policy no longer has: the form keeps it chosen, so that
// saving it is a policy error next to the field, never "Any address".
func TestEditKeepsAFilterThePolicyDropped(t *testing.T) {
	pol := testPolicy()
	pol.IPFilters["lab"] = []string{"203.0.113.0/24"}
	h := newHost(t, pol)
	_, tok := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "lab", Roles: []string{"admin"}, IPFilter: "lab"})

	pol = testPolicy() // the same store, under a policy without "lab"
	iss, err := apitoken.NewIssuer(h.kit.Store, pol, apitoken.WithClock(h.kit.Clock.Now))
	require.NoError(t, err)
	ui, err := adminui.New(iss, authorize, adminui.WithPrefix(prefix), adminui.WithClock(h.kit.Clock.Now))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", ui)
	h2 := &host{kit: h.kit, srv: httptest.NewServer(mux)}
	t.Cleanup(h2.srv.Close)
	alice := h.client(t, "alice")
	edit := h2.do(t, alice, http.MethodGet, orgPage+tok.ID+"/edit", nil)
	require.Equal(t, http.StatusOK, edit.status)
	assert.Contains(t, edit.body, `<option value="lab" selected>lab (not in the policy)</option>`)
	form := formValues(edit.body)
	assert.Equal(t, "lab", form.Get("ip_filter"))
	form.Set("name", "lab-2")
	resp := h2.do(t, alice, http.MethodPost, orgPage+tok.ID+"/edit", form)
	require.Equal(t, http.StatusUnprocessableEntity, resp.status)
	assert.Equal(t, `No IP filter named "lab".`, html.UnescapeString(fieldError(t, resp.body, "ip_filter")))
	got, err := iss.Get(t.Context(), tok.ID)
	require.NoError(t, err)
	assert.Equal(t, "lab", got.IPFilter.Name, "unchanged")
}
