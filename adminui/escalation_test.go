package adminui_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
)

// TestConsoleNoEscalation: the attack of issue 20 through the console. A
// manager signed in with a reader token regenerates the org's admin token
// and asks to be shown its key: before, the regenerate page showed a key
// with roles [admin] and Show returned the admin key; now both are refused
// with the policy's words, no key is shown, and the admin token and its key
// are as they were.
func TestConsoleNoEscalation(t *testing.T) {
	h := newHost(t, apitoken.Policy{}, apitoken.WithSealKeys(bytes.Repeat([]byte{9}, 32)))
	adminKey, admin := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "admin", Roles: []string{"admin"}})
	readerKey, _ := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "reader", Roles: []string{"reader"}})
	mallory := h.client(t, h.signInWithKey(t, readerKey))

	regen := h.do(t, mallory, http.MethodPost, orgPage+admin.ID+"/regenerate", url.Values{"lifetime": {"12mo"}})
	assert.Equal(t, http.StatusUnprocessableEntity, regen.status)
	assert.Empty(t, shownKey(regen.body), "no key")
	assert.True(t, strings.Contains(regen.body, `<p class="error" role="alert" id="form-error">Issuer lacks role &#34;admin&#34;.</p>`),
		"the refusal, in the policy's words, above the form (the body may hold a key: not printed)")
	noKey(t, regen.body, adminKey, "the admin key")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.srv.URL+orgPage+admin.ID+"/reveal", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := mallory.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	noKey(t, string(body), adminKey, "Show refused")

	stored, err := h.kit.Issuer.Get(t.Context(), admin.ID)
	require.NoError(t, err)
	assert.Equal(t, admin.Version, stored.Version, "nothing changed")
	assert.Equal(t, http.StatusOK, h.use(t, http.MethodGet, "/devices", adminKey), "the admin key still works")
	assert.Empty(t, h.audited(apitoken.EventRegenerated))
	assert.Empty(t, h.audited(apitoken.EventRecovered))
}
