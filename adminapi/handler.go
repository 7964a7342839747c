package adminapi

import (
	"embed"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// ErrUnauthenticated is what an authorization hook returns (wrapped or not)
// when the request carries no valid credentials of the host: the handler
// then answers 401. Any other error of the hook is a 403.
var ErrUnauthenticated = errors.New("adminapi: unauthenticated")

// DefaultMaxBodyBytes caps a request body unless [WithMaxBodyBytes] says
// otherwise: 64 KiB.
const DefaultMaxBodyBytes = 64 << 10

// A Manager is who acts on a request, as the host's authorization hook
// says: their ID, their privileges and the scopes they may manage.
type Manager struct {
	// Actor is the host's ID for the manager (for example "user:42"). The
	// handler passes it to the Issuer with [apitoken.WithActor] on every
	// call, so a new token's CreatedBy and every audit event name them.
	// It must not be empty.
	Actor string
	// UserID is the manager's own user ID: the owner of the tokens under
	// /self/apitokens. Empty means the manager has no tokens of their own
	// (403 there).
	UserID string
	// Privileges are what the manager holds, for the no-escalation rule:
	// the handler passes them to the Issuer with [apitoken.WithPrivileges]
	// on every call, so no token they create, update, regenerate or reveal
	// may hold a role, an access level or a resource beyond them. nil means
	// nothing, so such a manager can only issue tokens that hold nothing.
	Privileges *apitoken.Principal
	// May reports whether the manager may manage the tokens of a scope.
	// nil means no scope at all (deny by default).
	May func(Scope) bool
}

// A Scope is one collection of tokens: those of one owner.
type Scope struct {
	// Owner is whose tokens: a user (/self/apitokens, /users/{user}/apitokens)
	// or an org (/orgs/{org}/apitokens).
	Owner apitoken.Owner
	// Self is set for /self/apitokens, whose Owner is the manager's own
	// user (Manager.UserID).
	Self bool
}

// Handler serves the admin API. Use [New]; the zero value is not usable.
// A Handler is immutable and safe for concurrent use.
type Handler struct {
	iss       *apitoken.Issuer
	authorize func(*http.Request) (*Manager, error)
	cfg       config
	mux       *http.ServeMux
	routes    []Route
	h         http.Handler    // mux behind cross-origin protection
	issPolicy apitoken.Policy // the Issuer's, for statuses without WithPolicy
}

// A Route is one method and path pattern the handler serves, relative to
// where it is mounted, in [http.ServeMux] pattern syntax
// ("/orgs/{org}/apitokens/{id}").
type Route struct {
	Method  string
	Pattern string
}

// An Option configures [New].
type Option func(*config)

type config struct {
	prefix    string
	policy    *apitoken.Policy
	clock     func() time.Time
	cop       *http.CrossOriginProtection
	maxBody   int64
	challenge string
	optionErr error
}

// WithPrefix sets the URL path the handler is mounted at, for example
// "/api/v1": mount it with mux.Handle(prefix+"/", h), not behind
// [http.StripPrefix], as package adminui's console is mounted with its
// own WithPrefix. The handler then serves only the paths under prefix,
// and [Handler.Routes] stay relative to it. The prefix must start with
// "/" and not end with one, and hold no {, }, ?, #, % or spaces. Without
// WithPrefix the handler serves paths relative to where it is mounted:
// mount it at the root, or behind http.StripPrefix.
func WithPrefix(prefix string) Option {
	return func(c *config) {
		if !validPrefix(prefix) {
			c.optionErr = errors.Join(c.optionErr, fmt.Errorf("adminapi: WithPrefix: %q must start with / and not end with one, with no {, }, ?, #, %% or spaces", prefix))
			return
		}
		c.prefix = prefix
	}
}

// validPrefix reports whether p may be a mount prefix.
func validPrefix(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasSuffix(p, "/") &&
		!strings.ContainsAny(p, "{}?#% \t\r\n") && !strings.Contains(p, "//")
}

// WithChallenge sets the WWW-Authenticate header of 401 answers to
// challenge, the host's own scheme (for example `Cookie realm="console"`
// or `Bearer realm="admin"`), as RFC 9110 asks of a 401. Without it a 401
// has no challenge.
func WithChallenge(challenge string) Option {
	return func(c *config) {
		if challenge == "" || strings.ContainsAny(challenge, "\r\n") {
			c.optionErr = errors.Join(c.optionErr, errors.New("adminapi: WithChallenge: empty, or a line break"))
			return
		}
		c.challenge = challenge
	}
}

// WithPolicy gives the handler the Policy the Issuer was built with,
// for GET /policy (which lifetimes, roles and IP filter names a form may
// offer) and for the status of tokens whose expiry the policy shortens
// (MaxLifetime, RequireExpiry). Without it GET /policy answers 404 (the
// policy is published only by choice) and statuses follow the Issuer's
// policy ([apitoken.Issuer.Policy]). The policy is copied.
func WithPolicy(p apitoken.Policy) Option {
	return func(c *config) {
		if err := p.Validate(); err != nil {
			c.optionErr = errors.Join(c.optionErr, err)
			return
		}
		cp := p.Clone()
		c.policy = &cp
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

// WithCrossOriginProtection replaces the default protection of
// state-changing requests against cross-site requests (a new
// [http.CrossOriginProtection]) with p, for example one with trusted
// origins added. p's deny handler answers rejected requests. nil is an
// error.
func WithCrossOriginProtection(p *http.CrossOriginProtection) Option {
	return func(c *config) {
		if p == nil {
			c.optionErr = errors.Join(c.optionErr, errors.New("adminapi: WithCrossOriginProtection: nil"))
			return
		}
		c.cop = p
	}
}

// WithMaxBodyBytes caps request bodies at n bytes (default
// [DefaultMaxBodyBytes]); a longer body is answered with 413. n must be
// positive.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			c.optionErr = errors.Join(c.optionErr, errors.New("adminapi: WithMaxBodyBytes: not positive"))
			return
		}
		c.maxBody = n
	}
}

//go:embed openapi.json
var docFS embed.FS

// OpenAPI returns the OpenAPI 3.1 document of the API, as GET /openapi.json
// serves it. The caller owns the slice.
func OpenAPI() []byte {
	b, err := docFS.ReadFile("openapi.json")
	if err != nil {
		panic("adminapi: embedded openapi.json missing") // unreachable: embedded at build time
	}
	return b
}

// New returns a Handler managing iss's tokens. authorize turns each request
// to a route (except GET /openapi.json) into the acting [Manager], or an
// error: one wrapping [ErrUnauthenticated] is answered 401, any other 403.
// A hook that returns neither (a nil Manager, or one with an empty Actor)
// is a host bug, answered 500 without acting. authorize must be safe for
// concurrent use. A nil hook is an error, so there is no handler without
// one; so is a nil Issuer or a bad option.
//
// Mount the handler with [WithPrefix], as the console is mounted:
//
//	h, err := adminapi.New(iss, authorize, adminapi.WithPrefix("/api/v1"))
//	mux.Handle("/api/v1/", h)
//
// Without WithPrefix it serves paths relative to where it is mounted, so
// mount it at the root or behind [http.StripPrefix], as in
// mux.Handle("/api/v1/", http.StripPrefix("/api/v1", h)). Either way the
// Location of a new token (relative to its collection) resolves. A wrong
// mount is answered 404 with a problem whose detail says how to mount
// the handler: a request outside its WithPrefix (as behind StripPrefix),
// or one that is no route but ends in one (as without StripPrefix or
// WithPrefix).
func New(iss *apitoken.Issuer, authorize func(*http.Request) (*Manager, error), opts ...Option) (*Handler, error) {
	if iss == nil {
		return nil, errors.New("adminapi: New: nil Issuer")
	}
	if authorize == nil {
		return nil, errors.New("adminapi: New: nil authorization hook (no hook, no handler)")
	}
	cfg := config{clock: time.Now, maxBody: DefaultMaxBodyBytes}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("adminapi: New: nil Option")
		}
		o(&cfg)
	}
	if cfg.optionErr != nil {
		return nil, cfg.optionErr
	}
	if cfg.cop == nil {
		cfg.cop = http.NewCrossOriginProtection()
		cfg.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeProblem(w, &problem{Status: http.StatusForbidden, Code: "cross_origin",
				Detail: "Cross-origin state-changing requests are not allowed."})
		}))
	}
	h := &Handler{iss: iss, authorize: authorize, cfg: cfg, mux: http.NewServeMux(), issPolicy: iss.Policy()}
	h.register()
	h.h = cfg.cop.Handler(http.HandlerFunc(h.route))
	return h, nil
}

// route serves r with the mux: under the prefix, with the prefix cut
// off, as http.StripPrefix would; or answers a wrong mount with how to
// mount the handler.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if p := h.cfg.prefix; p != "" {
		rest, ok := strings.CutPrefix(r.URL.Path, p)
		if !ok || (rest != "" && rest[0] != '/') {
			writeProblem(w, &problem{Status: http.StatusNotFound, Code: "not_found", Detail: fmt.Sprintf(
				"No such route. This handler serves the paths under %q (adminapi.WithPrefix): mount it with mux.Handle(%q, h), not behind http.StripPrefix.",
				p, p+"/")})
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := new(http.Request)
		*r2 = *r
		r2.URL = new(url.URL)
		*r2.URL = *r.URL
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		if rp, ok := strings.CutPrefix(r.URL.RawPath, p); ok && rp != "" {
			r2.URL.RawPath = rp
		}
		r = r2
	}
	if !h.routed(r, r.URL.Path) {
		if mount, route, ok := h.mountedAt(r); ok {
			mount = h.cfg.prefix + mount
			writeProblem(w, &problem{Status: http.StatusNotFound, Code: "not_found", Detail: fmt.Sprintf(
				"No such route. This handler serves paths relative to where it is mounted, and %q is one of them: if it is mounted at %q, build it with adminapi.WithPrefix(%q) and mount it with mux.Handle(%q, h).",
				route, mount, mount, mount+"/")})
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// routed reports whether path, in r's place, is one of the handler's
// routes (for any method).
func (h *Handler) routed(r *http.Request, path string) bool {
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &url.URL{Path: path}
	_, pattern := h.mux.Handler(r2)
	return pattern != "" && pattern != "/" // "/" answers every other path with 404
}

// mountedAt guesses, for a request that is no route, where the handler
// is mounted: the shortest head of the path whose tail is a route, as
// when the handler is mounted at that head without WithPrefix or
// http.StripPrefix.
func (h *Handler) mountedAt(r *http.Request) (mount, route string, ok bool) {
	path := r.URL.Path
	for i := 1; i < len(path); i++ {
		if path[i] == '/' && validPrefix(path[:i]) && h.routed(r, path[i:]) {
			return path[:i], path[i:], true
		}
	}
	return "", "", false
}

// Routes returns every route the handler serves, in a fixed order. The
// caller owns the slice.
func (h *Handler) Routes() []Route {
	return append([]Route(nil), h.routes...)
}

// ServeHTTP serves the admin API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.h.ServeHTTP(w, r)
}

// copyPolicy copies the slices and maps of p the handler reads.
