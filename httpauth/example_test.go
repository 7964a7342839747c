package httpauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

// ExampleNew protects one API of a multi-tenant server behind load
// balancers; the lines between the markers are the README's HTTP snippet.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New()
	policy := apitoken.Policy{
		Prefix: "acme",
		Roles:  map[string]apitoken.Role{"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}},
	}
	iss, _ := apitoken.NewIssuer(store, policy)
	secret, _, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}})
	mux := http.NewServeMux()
	devicesHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.Name)
	})

	// README: HTTP middleware and rate limits
	lim := apitoken.NewLocalLimiter() // or the Redis limiter, shared by replicas
	v, err := apitoken.NewValidator(store, policy, apitoken.WithLimiter(lim))
	auth, err := httpauth.New(v,
		httpauth.WithOrg(func(r *http.Request) string { return r.PathValue("org") }),
		httpauth.WithTrustedProxies("X-Forwarded-For", netip.MustParsePrefix("10.0.0.0/8")), // your load balancers
		// The API is "devices", not the pattern's first segment ("orgs"):
		httpauth.WithAPIName("devices"),
	)
	mux.Handle("/orgs/{org}/devices/", auth.Wrap(devicesHandler))
	// in the handler: p, ok := httpauth.PrincipalFrom(r.Context())
	// end of the README snippet
	if err != nil {
		panic(err)
	}

	call := func(method, path, token string) {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "10.0.0.7:51000" // a load balancer
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(strings.TrimSpace(fmt.Sprint(method, " ", path, " ", w.Code, " ", w.Header().Get("WWW-Authenticate"), " ", w.Body)))
	}
	call("GET", "/orgs/org_1/devices/", secret.Reveal())
	call("GET", "/orgs/org_1/devices/", "")
	call("GET", "/orgs/org_2/devices/", secret.Reveal())
	call("POST", "/orgs/org_1/devices/", secret.Reveal())
	_ = v.Close(ctx)
	// Output:
	// GET /orgs/org_1/devices/ 200  hello ci
	// GET /orgs/org_1/devices/ 401 Bearer realm="api" {"type":"about:blank","title":"Unauthorized","status":401,"detail":"An API token is required.","code":"unauthenticated"}
	// GET /orgs/org_2/devices/ 401 Bearer realm="api", error="invalid_token" {"type":"about:blank","title":"Unauthorized","status":401,"detail":"A valid API token is required.","code":"invalid_token"}
	// POST /orgs/org_1/devices/ 403 Bearer realm="api", error="insufficient_scope", scope="devices:full" {"type":"about:blank","title":"Forbidden","status":403,"detail":"The API token does not allow this request.","code":"insufficient_scope"}
}

// ExampleNewClientIPSource finds client addresses as the middleware does,
// for a host that needs them elsewhere (its own logs, say): behind proxies
// in 10.0.0.0/8 that append X-Forwarded-For, nothing else counts.
func ExampleNewClientIPSource() {
	src, err := httpauth.NewClientIPSource("X-Forwarded-For", netip.MustParsePrefix("10.0.0.0/8"))
	if err != nil {
		panic(err)
	}
	show := func(peer string, header http.Header) {
		r := &http.Request{RemoteAddr: peer, Header: header}
		fmt.Println(src.ClientIP(r))
	}
	show("10.0.0.7:51000", http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.7, 10.0.0.3"}})
	show("10.0.0.7:51000", http.Header{"X-Forwarded-For": {"198.51.100.7"}, "Forwarded": {"for=203.0.113.9"}})
	show("198.51.100.7:4000", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	show("10.0.0.7:51000", http.Header{"X-Forwarded-For": {"198.51.100.7, garbage"}})
	_, err = httpauth.NewClientIPSource("X-Forwarded-For")
	fmt.Println(err)
	// Output:
	// 198.51.100.7
	// 198.51.100.7
	// 198.51.100.7
	// invalid IP
	// httpauth: no trusted proxies: name the prefixes of the proxies that set X-Forwarded-For
}

// ExampleMiddleware_RequireRole guards one route by role inside the
// middleware, on a single-tenant server.
func ExampleMiddleware_RequireRole() {
	ctx := context.Background()
	store := memstore.New()
	policy := apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}},
			"admin":    {Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}},
		},
	}
	iss, _ := apitoken.NewIssuer(store, policy)
	v, _ := apitoken.NewValidator(store, policy, apitoken.WithSingleTenant("org_1"))
	auth, err := httpauth.New(v)
	if err != nil {
		panic(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux := http.NewServeMux()
	mux.Handle("GET /reports/", auth.Wrap(ok))
	mux.Handle("GET /audit/", auth.Wrap(auth.RequireRole("admin")(ok)))

	secret, _, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}})
	for _, path := range []string{"/reports/1", "/audit/1"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(path, w.Code)
	}
	_ = v.Close(ctx)
	// Output:
	// /reports/1 204
	// /audit/1 403
}

// ExampleSlogObserver logs why requests were rejected, naming a found token
// by its ID and hint, never by its secret.
func ExampleSlogObserver() {
	store := memstore.New()
	policy := apitoken.Policy{Prefix: "acme"}
	v, _ := apitoken.NewValidator(store, policy, apitoken.WithSingleTenant("org_1"))
	// A logger to stdout without times, so the output is stable.
	logger := newStdoutLogger()
	auth, _ := httpauth.New(v, httpauth.WithAPIName("devices"), httpauth.WithObserver(httpauth.SlogObserver(logger)))
	h := auth.Wrap(http.NotFoundHandler())
	r := httptest.NewRequest("GET", "/devices/1", nil)
	r.Header.Set("Authorization", "Bearer acme_notatoken")
	h.ServeHTTP(httptest.NewRecorder(), r)
	_ = v.Close(context.Background())
	// Output:
	// level=WARN msg="httpauth: request rejected" method=GET api=devices client_ip=192.0.2.1 status=401 reason="apitoken: malformed token"
}

func newStdoutLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}
