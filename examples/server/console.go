package main

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/httpauth"
)

// consolePath is where the token console (package adminui) is mounted.
const consolePath = "/settings/api-tokens"

// sessionCookie holds the management token a person signed in with at
// /login: this demo has no accounts, so the token is the session. The
// console checks it on every request, as the admin API's middleware does.
const sessionCookie = "demo_session"

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

// signedIn validates the session cookie's token for the "apitokens" API.
func signedIn(v *apitoken.Validator, r *http.Request, token string) (*adminapi.Manager, error) {
	var peer httpauth.ClientIPSource // no proxy in front: the connection's address
	p, err := v.Validate(r.Context(), token, apitoken.Request{IP: peer.ClientIP(r), API: "apitokens", Access: apitoken.AccessFull})
	if err != nil {
		return nil, errors.Join(adminapi.ErrUnauthenticated, err) // 401: sign in again
	}
	return manager(p)
}

// mountConsole serves the console at consolePath, opening on the demo
// org's page, and the sign-in page at /login.
func mountConsole(mux *http.ServeMux, v *apitoken.Validator, iss *apitoken.Issuer) error {
	ui, err := adminui.New(iss, func(r *http.Request) (*adminapi.Manager, error) {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			return nil, adminapi.ErrUnauthenticated
		}
		return signedIn(v, r, c.Value)
	}, adminui.WithPrefix(consolePath), adminui.WithTitle("Demo"), adminui.WithSignIn("/login"),
		adminui.WithAPIs(adminui.API{Name: "devices", Title: "Devices"}, adminui.API{Name: "apitokens", Title: "Token management"}))
	if err != nil {
		return err
	}
	home := consolePath + "/orgs/" + org + "/"
	mux.Handle(consolePath+"/", ui)
	mux.Handle("GET "+consolePath+"/{$}", http.RedirectHandler(home, http.StatusSeeOther))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, _ *http.Request) { loginPage.Execute(w, "") })
	// Cross-site posts are refused, so no other site can sign a visitor in.
	mux.Handle("POST /login", http.NewCrossOriginProtection().Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.PostFormValue("token")
		if _, err := signedIn(v, r, token); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			loginPage.Execute(w, "That is not a working management token (the token-admin role).")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: consolePath,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, home, http.StatusSeeOther)
	})))
	return nil
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Sign in · Demo</title>
<h1>Sign in to the token console</h1>
{{with .}}<p role="alert">{{.}}</p>{{end}}
<form method="post" action="/login">
<label for="token">Management token</label>
<input id="token" name="token" type="password" autocomplete="off" required size="50">
<button type="submit">Sign in</button>
</form>
</html>`))
