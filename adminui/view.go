package adminui

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/console.css assets/console.js
var assetFS embed.FS

// pages are the page templates, each with the layout.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{"levels": func() any { return levels }}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"list", "form", "confirm", "message"} {
		out[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return out
}()

// pageData is what the layout renders around a page.
type pageData struct {
	Title      string
	Heading    string
	Stylesheet string
	Assets     string // URL of the asset folder
	Home       string // the scope's page
	KeyPage    string // set on a page that shows a key or answers a post: the URL a reload should load instead
	Page       any
}

// listView is the table of tokens.
type listView struct {
	Key          *shownKey
	Notice       string
	Rows         []row
	NewURL       string
	RevokeAllURL string
	NextURL      string
}

// shownKey is a key shown once (or again, for a recoverable token).
type shownKey struct {
	Verb string // created, regenerated or shown
	Name string
	Key  string
}

// row is one token of the table.
type row struct {
	ID, Name, Description, Hint, Kind string
	Access                            []string
	Expires, LastUsed, CreatedBy      string
	Status                            string
	Frozen                            string // why only Delete is offered: "expired" or "revoked"
	Recoverable                       bool
	URL                               string // the token's path prefix: URL+"edit", URL+"revoke", …
}

type confirmView struct {
	Question, Detail, Action, Button, Cancel string
	Warning                                  string // what else the action does, if anything
}

type messageView struct {
	Status         int
	Message        string
	Link, LinkText string // a way on, if any
}

func (h *Handler) row(c *call, t *apitoken.Token, now time.Time) row {
	r := row{ID: t.ID, Name: t.Name, Description: t.Description, Hint: t.Hint, Kind: "org",
		Expires: expiryWords(h.policy.ExpiresAt(t)), LastUsed: "Never", CreatedBy: t.CreatedBy,
		Status: string(h.policy.Status(t, now)), Recoverable: t.Sealed != nil, URL: c.base + t.ID + "/"}
	if t.Kind == apitoken.KindUser {
		r.Kind = "user"
	}
	if !t.LastUsedAt.IsZero() {
		r.LastUsed = timeWords(t.LastUsedAt)
	}
	if r.Status != string(apitoken.StatusActive) {
		r.Frozen = r.Status
	}
	r.Access = append(r.Access, t.Roles...)
	for _, api := range slices.Sorted(maps.Keys(t.Grants)) {
		name := api
		if api == apitoken.AllAPIs {
			name = "all APIs"
		}
		r.Access = append(r.Access, name+": "+t.Grants[api].String())
	}
	// One entry a resource: an ID may hold commas and spaces.
	for _, res := range t.Resources {
		r.Access = append(r.Access, "resource: "+res)
	}
	return r
}

// render writes the page template name with v. A page that shows a key
// is never cached; every page is private.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, c *call, status int, name string, v any, showsKey bool) {
	reload := ""
	if showsKey && c != nil {
		reload = c.base
	}
	h.renderPage(w, r, c, status, name, v, reload)
}

// renderPage is render with reload, when not empty, the URL the page's
// script points its history entry at, so that a reload or a return loads
// it instead of this page (one that shows a key, or answers a post).
func (h *Handler) renderPage(w http.ResponseWriter, r *http.Request, c *call, status int, name string, v any, reload string) {
	d := pageData{Title: h.cfg.title, Heading: h.cfg.title, Stylesheet: h.cfg.stylesheet, Assets: h.cfg.prefix + "/assets/", Page: v, KeyPage: reload}
	if c != nil {
		d.Home = c.base
		d.Heading = heading(c)
	}
	h.write(w, r, status, name, d)
}

// write executes the page template name with d.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := pages[name].Execute(&buf, d); err != nil {
		slog.ErrorContext(r.Context(), "adminui: render", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// Every page may show token details: no-store keeps them out of every
	// cache, and out of the back/forward cache for a page with a key.
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders a message page with status: it shows no token.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, c *call, status int, msg string) {
	h.render(w, r, c, status, "message", messageView{Status: status, Message: msg}, false)
}

func heading(c *call) string {
	switch {
	case c.scope.Self:
		return "Your API tokens"
	case c.scope.Owner.Kind == apitoken.KindOrg:
		return "API tokens of " + c.scope.Owner.ID
	}
	return "API tokens of user " + c.scope.Owner.ID
}

func serveAsset(name string) http.HandlerFunc {
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil {
		panic("adminui: embedded asset missing: " + name) // unreachable: embedded at build time
	}
	ctype := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ctype = "text/javascript; charset=utf-8"
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	}
}

// lifetimeWords is l in words, capitalized: "6 months", "No expiry".
func lifetimeWords(l apitoken.Lifetime) string { return sentenceCase(l.Words()) }

func sentenceCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// splitLifetime returns l as a number and a unit of the form, if it is one.
func splitLifetime(l apitoken.Lifetime) (int, string, bool) {
	s := l.String()
	for _, u := range []struct{ suffix, unit string }{{"mo", "months"}, {"d", "days"}, {"h", "hours"}, {"m", "minutes"}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				return n, u.unit, true
			}
		}
	}
	return 0, "", false
}

// expiryWords is when a token expires: "Never" or a UTC time.
func expiryWords(at time.Time) string {
	if at.IsZero() {
		return "Never"
	}
	return timeWords(at)
}

func timeWords(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }
