package adminui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/apitoken/apitoken"
)

// signedInHere reports whether the credential the manager is signed in
// with is one of the scope's tokens: the hook's Privileges came from a
// validated token (TokenID set) of the scope's owner. Revoking the
// scope's tokens then signs the manager out.
func signedInHere(c *call) bool {
	p := c.m.Privileges
	return p != nil && p.TokenID != "" && p.Kind == c.scope.Owner.Kind && p.OwnerID == c.scope.Owner.ID
}

// signedInWarning is what the Revoke all confirmation adds when the scope
// holds the token the manager is signed in with; "" otherwise.
func signedInWarning(c *call) string {
	if !signedInHere(c) {
		return ""
	}
	p := c.m.Privileges
	which := ""
	switch {
	case p.Name != "" && p.Hint != "":
		which = " (“" + p.Name + "”, " + p.Hint + ")"
	case p.Name != "":
		which = " (“" + p.Name + "”)"
	case p.Hint != "":
		which = " (" + p.Hint + ")"
	}
	return "This includes the token you are signed in with" + which + ": you will be signed out."
}

// revokedSignedIn answers a Revoke all that revoked the manager's own
// credential. It renders the result in the response to the post rather
// than redirecting to the list, because the next request may well be
// unauthenticated (the host signs the manager out), and the list would
// then be a bare "Sign in" page that never says what happened. The page's
// script points its history entry at the list, so a reload does not post
// again.
func (h *Handler) revokedSignedIn(w http.ResponseWriter, r *http.Request, c *call, n int) {
	done := strings.TrimSuffix(notice(url.Values{"done": {"revoked-all"}, "n": {strconv.Itoa(n)}}), ".")
	h.endedSignedIn(w, r, c, done+", including the token you were signed in with, so you are signed out.")
}

// signedInWith reports whether t is the token the manager is signed in with.
func signedInWith(c *call, t *apitoken.Token) bool {
	p := c.m.Privileges
	return p != nil && p.TokenID != "" && p.TokenID == t.ID
}

// signedInWithWarning is what the Revoke and Delete confirmations add for
// the token the manager is signed in with; "" otherwise.
func signedInWithWarning(c *call, t *apitoken.Token) string {
	if !signedInWith(c, t) {
		return ""
	}
	return "This is the token you are signed in with: you will be signed out."
}

// endedSignedIn renders msg, the result of an action that ended the
// manager's own credential, in the response to the post, as
// revokedSignedIn does.
func (h *Handler) endedSignedIn(w http.ResponseWriter, r *http.Request, c *call, msg string) {
	v := messageView{Status: http.StatusOK, Message: msg, Link: c.base, LinkText: "Back to the tokens"}
	if h.cfg.signIn != "" {
		v.Link, v.LinkText = h.cfg.signIn, "Sign in"
	}
	h.renderPage(w, r, c, http.StatusOK, "message", v, c.base)
}
