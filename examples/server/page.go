package main

import (
	"html/template"
	"net/http"
)

// pageView is a page of the example's own: sign-in, sign-out, or the
// console's 503.
type pageView struct {
	Heading        string // empty: the sign-in heading
	Notice         string // a flash: why the last session ended
	Message        string // what went wrong
	Form           bool   // the sign-in form
	SignOut        bool   // the sign-out button
	Link, LinkText string
}

// page writes v with the console's safety headers, but framed by no one:
// a sign-in page inside another site's frame invites clickjacking.
func page(w http.ResponseWriter, status int, v pageView) {
	if v.Heading == "" {
		v.Heading = "Sign in to the token console"
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, v)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Heading}} · Demo</title>
<link rel="stylesheet" href="` + consolePath + `/assets/console.css">
<main class="apitoken-console">
<h1>{{.Heading}}</h1>
{{with .Notice}}<p class="message" role="status">{{.}}</p>{{end}}
{{with .Message}}<p class="message" role="alert">{{.}}</p>{{end}}
{{if .Form}}<form method="post" action="/login">
<label for="token">Management token</label>
<input id="token" name="token" type="password" autocomplete="off" required size="50">
<button class="button primary" type="submit">Sign in</button>
</form>{{end}}
{{if .SignOut}}<form method="post" action="` + signOutPath + `"><button class="button primary" type="submit">Sign out</button></form>{{end}}
{{with .Link}}<p><a class="button" href="{{.}}">{{$.LinkText}}</a></p>{{end}}
</main>
</html>`))
