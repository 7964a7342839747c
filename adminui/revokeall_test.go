package adminui_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
)

// TestRevokeAllSignedInWith revokes every token of an org as a manager
// signed in with one of them: the confirmation says so, and the result
// is in the answer to the post, since the next request is signed out.
func TestRevokeAllSignedInWith(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	key, own := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "console", Roles: []string{"admin"}})
	for _, name := range []string{"one", "two"} {
		h.kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: name, Roles: []string{"reader"}})
	}
	manager := h.client(t, h.signInWithKey(t, key))

	confirm := h.do(t, manager, http.MethodGet, orgPage+"revoke-all", nil)
	require.Equal(t, http.StatusOK, confirm.status)
	assert.Contains(t, confirm.body, `<p class="warning" id="confirm-warning"><strong>This includes the token you are signed in with (“console”, `+own.Hint+`): you will be signed out.</strong></p>`)
	other := h.do(t, h.client(t, "alice"), http.MethodGet, orgPage+"revoke-all", nil)
	require.Equal(t, http.StatusOK, other.status)
	assert.NotContains(t, other.body, "signed in with", "alice signed in otherwise: no warning")

	done := h.do(t, manager, http.MethodPost, orgPage+"revoke-all", url.Values{})
	require.Equal(t, http.StatusOK, done.status, "the result is the answer to the post, not a redirect to a list the manager may no longer see")
	assert.Contains(t, done.body, `<p class="message" role="alert" data-status="200">3 tokens revoked, including the token you were signed in with, so you are signed out.</p>`)
	assert.Contains(t, done.body, `<a class="button primary" href="/login">Sign in</a>`)
	assert.Contains(t, done.body, `data-key-page="`+orgPage+`"`, "a reload loads the list instead of posting again")
	assert.Equal(t, "no-store", done.header.Get("Cache-Control"))
	assert.Len(t, h.audited(apitoken.EventRevokedAll), 1)

	next := h.do(t, manager, http.MethodGet, orgPage, nil)
	assert.Equal(t, http.StatusUnauthorized, next.status, "the host signed the manager out: the key is revoked")
}

// TestRevokeAllOthers is Revoke all by a manager signed in otherwise: back
// to the list, which says how many were revoked.
func TestRevokeAllOthers(t *testing.T) {
	h := newHost(t, apitoken.Policy{})
	h.kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "one", Roles: []string{"reader"}})
	// A token of alice's own scope, not the org's: signed in with it, she
	// revokes the org's tokens and stays signed in.
	key := h.kit.Issue(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "alice", Name: "alice-console", Roles: []string{"admin"}})
	for _, who := range []string{"alice", h.signInWithKey(t, key)} {
		c := h.client(t, who)
		confirm := h.do(t, c, http.MethodGet, orgPage+"revoke-all", nil)
		require.Equal(t, http.StatusOK, confirm.status, who)
		assert.NotContains(t, confirm.body, "confirm-warning", who)
	}
	done := h.do(t, h.client(t, "alice"), http.MethodPost, orgPage+"revoke-all", url.Values{})
	require.Equal(t, http.StatusSeeOther, done.status)
	assert.Equal(t, orgPage+"?done=revoked-all&n=1", done.header.Get("Location"))
}

// TestRevokeOrDeleteSignedInWith: Revoke or Delete of the very token the
// manager is signed in with warns on its confirmation, and the result is
// the answer to the post ("Token revoked: it is the token you were signed
// in with, so you are signed out."), not a bare sign-in prompt.
func TestRevokeOrDeleteSignedInWith(t *testing.T) {
	for _, action := range []string{"revoke", "delete"} {
		t.Run(action, func(t *testing.T) {
			h := newHost(t, apitoken.Policy{})
			key, own := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "console", Roles: []string{"admin"}})
			_, other := h.kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: apitokentest.DefaultOrg, Name: "other", Roles: []string{"reader"}})
			manager := h.client(t, h.signInWithKey(t, key))

			confirm := h.do(t, manager, http.MethodGet, orgPage+own.ID+"/"+action, nil)
			require.Equal(t, http.StatusOK, confirm.status)
			assert.Contains(t, confirm.body, `<strong>This is the token you are signed in with: you will be signed out.</strong>`)
			confirm = h.do(t, manager, http.MethodGet, orgPage+other.ID+"/"+action, nil)
			assert.NotContains(t, confirm.body, "confirm-warning", "another token: no warning")

			done := h.do(t, manager, http.MethodPost, orgPage+own.ID+"/"+action, url.Values{})
			require.Equal(t, http.StatusOK, done.status)
			verb := map[string]string{"revoke": "revoked", "delete": "deleted"}[action]
			assert.Contains(t, done.body, `<p class="message" role="alert" data-status="200">Token `+verb+`: it is the token you were signed in with, so you are signed out.</p>`)
			assert.Contains(t, done.body, `<a class="button primary" href="/login">Sign in</a>`)
			assert.Equal(t, http.StatusUnauthorized, h.do(t, manager, http.MethodGet, orgPage, nil).status)
		})
	}
}
