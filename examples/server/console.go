package main

import (
	"errors"
	"net/http"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/adminui"
)

// consolePath is where the token console (package adminui) is mounted.
// The session cookie is scoped to it, so the console's ways out, to sign
// out and to sign in again, are under it too.
const (
	consolePath = "/settings/api-tokens"
	signOutPath = consolePath + "/sign-out"
	signInPath  = consolePath + "/sign-in"
)

var errNotTokenAdmin = errors.New("not a token-admin token")

// manager is who acts with a management token: it manages the demo org's
// tokens and may grant no more than it holds. The admin API and the
// console share it.
func manager(p *apitoken.Principal) (*adminapi.Manager, error) {
	if !p.HasRole("token-admin") {
		return nil, errNotTokenAdmin // 403
	}
	return &adminapi.Manager{
		Actor:      "token:" + p.TokenID,
		Privileges: p,
		May:        func(s adminapi.Scope) bool { return s.Owner == apitoken.OrgOwner(org) },
	}, nil
}

// mountConsole serves the console at consolePath, opening on the demo
// org's page, for people signed in at /login, and the sign-out page.
func (s *server) mountConsole(mux *http.ServeMux, o options) error {
	ss := &sessions{iss: s.iss, policy: s.iss.Policy(), now: o.now, behindTLS: o.behindTLS, m: map[string]*session{}}
	ui, err := adminui.New(s.iss, signedIn,
		adminui.WithPrefix(consolePath), adminui.WithTitle("Demo"), adminui.WithSignIn(signInPath), adminui.WithClock(o.now),
		adminui.WithAPIs(adminui.API{Name: "devices", Title: "Devices"}, adminui.API{Name: "apitokens", Title: "Token management"}))
	if err != nil {
		return err
	}
	mux.Handle(consolePath+"/", ss.require(ui))
	mux.Handle("GET "+consolePath+"/assets/", ui) // the stylesheet and script need no session
	mux.Handle("GET "+consolePath+"/{$}", http.RedirectHandler(home, http.StatusSeeOther))
	mux.HandleFunc("GET "+signOutPath, func(w http.ResponseWriter, _ *http.Request) {
		page(w, http.StatusOK, pageView{Heading: "Sign out of the token console", SignOut: true})
	})
	mux.Handle("POST "+signOutPath, sameSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			ss.end(w, r, c.Value, flashSignedOut)
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})))
	// The console's Sign in links (its 401 page, and the result of a Revoke
	// all that revoked the token the manager signed in with) lead to
	// /login through here, which ends a session whose token is gone, so
	// /login says why.
	mux.HandleFunc("GET "+signInPath, func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			if _, flash, err := ss.check(r.Context(), c.Value); err == nil && flash != "" {
				ss.end(w, r, c.Value, flash)
			}
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	return s.mountLogin(mux, ss, o)
}

// home is the console's page of the demo org.
const home = consolePath + "/orgs/" + org + "/"

// sameSite refuses cross-site form posts, so no other site can sign a
// visitor in or out.
func sameSite(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		page(w, http.StatusForbidden, pageView{Message: "This form was sent from another site, so it was refused."})
	}))
	return cop.Handler(h)
}
