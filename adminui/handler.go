package adminui

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
)

// An API is one of the host's APIs, a row of the access grid.
type API struct {
	// Name is the API name tokens are granted on, as the host's
	// middleware names it (for example "billing"): see [apitoken.Grants].
	Name string
	// Title is what the page shows; empty means Name.
	Title string
}

// An Option configures [New].
type Option func(*config)

type config struct {
	prefix     string
	title      string
	stylesheet string
	apis       []API
	signIn     string
	clock      func() time.Time
	cop        *http.CrossOriginProtection
	optionErr  error
}

func (c *config) fail(format string) {
	c.optionErr = errors.Join(c.optionErr, errors.New("adminui: "+format))
}

// WithPrefix sets the URL path the console is mounted at, for example
// "/settings/api-tokens": mount it with mux.Handle(prefix+"/", h), not
// behind http.StripPrefix, as package adminapi's handler is mounted with
// [adminapi.WithPrefix]. The handler serves only paths under it and
// writes every link with it. It must start with "/" and not end with
// one, and hold no {, }, ?, #, % or spaces; the default is the root.
//
// A wrong mount answers 404 with a page that says how to mount the
// console: a request outside the prefix (as behind http.StripPrefix), or,
// without WithPrefix, one that reached no page but ends in one (as when
// mounted below the root).
func WithPrefix(prefix string) Option {
	return func(c *config) {
		if !validPrefix(prefix) {
			c.fail("WithPrefix: " + quote(prefix) + " must start with / and not end with one, with no {, }, ?, #, % or spaces")
			return
		}
		c.prefix = prefix
	}
}

// WithTitle sets the page title (default "API tokens").
func WithTitle(title string) Option {
	return func(c *config) {
		if strings.TrimSpace(title) == "" {
			c.fail("WithTitle: empty title")
			return
		}
		c.title = title
	}
}

// WithStylesheet adds a link to the host's stylesheet after the console's
// own, so its rules win. The Content-Security-Policy allows stylesheets of
// the page's own origin only, so href is a path on the host ("/static/app.css").
func WithStylesheet(href string) Option {
	return func(c *config) {
		if !localPath(href) {
			c.fail("WithStylesheet: " + quote(href) + " must be a path on this origin, such as /static/app.css")
			return
		}
		c.stylesheet = href
	}
}

// WithSignIn sets the host's sign-in page: the 401 page, for a request
// the hook finds unauthenticated, links to it. href is a path on this
// origin ("/login").
func WithSignIn(href string) Option {
	return func(c *config) {
		if !localPath(href) {
			c.fail("WithSignIn: " + quote(href) + " must be a path on this origin, such as /login")
			return
		}
		c.signIn = href
	}
}

// WithAPIs lists the host's APIs, in the order the access grid shows
// them. Without it the grid offers only the level for all APIs. A token's
// grants on an API the list lacks are shown and kept as they are.
func WithAPIs(apis ...API) Option {
	return func(c *config) {
		for _, a := range apis {
			if a.Name == "" || a.Name == apitoken.AllAPIs || slices.ContainsFunc(c.apis, func(b API) bool { return b.Name == a.Name }) {
				c.fail("WithAPIs: empty, \"*\" or repeated API name " + quote(a.Name))
				return
			}
			c.apis = append(c.apis, a)
		}
	}
}

// WithClock sets the clock statuses are computed with (pass the Issuer's:
// see [apitoken.WithClock]); nil restores time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			now = time.Now
		}
		c.clock = now
	}
}

// WithCrossOriginProtection replaces the default protection of form posts
// against cross-site requests (a new [http.CrossOriginProtection]) with
// p, for example one with trusted origins added. nil is an error.
func WithCrossOriginProtection(p *http.CrossOriginProtection) Option {
	return func(c *config) {
		if p == nil {
			c.fail("WithCrossOriginProtection: nil")
			return
		}
		c.cop = p
	}
}

// Handler serves the console. Use [New]; the zero value is not usable. A
// Handler is immutable and safe for concurrent use.
type Handler struct {
	iss       *apitoken.Issuer
	policy    apitoken.Policy
	authorize func(*http.Request) (*adminapi.Manager, error)
	cfg       config
	mux       *http.ServeMux // the pages
	h         http.Handler
}

// New returns the console over iss, whose policy decides what the forms
// offer. authorize is the admin API's hook (see [adminapi.New]): it
// turns each request into the acting [adminapi.Manager], or an error (one
// wrapping [adminapi.ErrUnauthenticated] is a 401 page, any other a 403
// page; neither shows a token). The same hook, Issuer and audit trail
// serve both. Errors: a nil Issuer or hook, or a bad option, with a
// message naming it.
func New(iss *apitoken.Issuer, authorize func(*http.Request) (*adminapi.Manager, error), opts ...Option) (*Handler, error) {
	if iss == nil {
		return nil, errors.New("adminui: New: nil Issuer")
	}
	if authorize == nil {
		return nil, errors.New("adminui: New: nil authorization hook (no hook, no console)")
	}
	cfg := config{title: "API tokens", clock: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("adminui: New: nil Option")
		}
		o(&cfg)
	}
	if cfg.optionErr != nil {
		return nil, cfg.optionErr
	}
	h := &Handler{iss: iss, policy: iss.Policy(), authorize: authorize, cfg: cfg}
	if h.cfg.cop == nil {
		h.cfg.cop = http.NewCrossOriginProtection()
		h.cfg.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.fail(w, r, nil, http.StatusForbidden, "This form was sent from another site, so it was refused. Nothing changed.")
		}))
	}
	h.mux = http.NewServeMux()
	h.register(h.mux)
	h.h = securityHeaders(h.cfg.cop.Handler(http.HandlerFunc(h.route)))
	return h, nil
}

// ServeHTTP serves the console.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.ServeHTTP(w, r) }

// contentSecurityPolicy allows the page's own scripts, styles and images
// and nothing else: no inline script or style, no frames of it elsewhere,
// forms posting only to this origin.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'; object-src 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "SAMEORIGIN")
		next.ServeHTTP(w, r)
	})
}

// validPrefix reports whether p may be a mount prefix.
func validPrefix(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasSuffix(p, "/") &&
		!strings.ContainsAny(p, "{}?#% \t\r\n") && !strings.Contains(p, "//")
}

// localPath reports whether href is a path on the page's own origin.
func localPath(href string) bool {
	return strings.HasPrefix(href, "/") && !strings.HasPrefix(href, "//") && !strings.ContainsAny(href, "\\\"'<> \t\r\n")
}

func quote(s string) string { return `"` + s + `"` }
