package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/httpauth"
)

// options are the server's settings beyond the store.
type options struct {
	// behindTLS says the server sits behind a proxy that terminates TLS,
	// so console cookies are Secure even on plain-HTTP requests from it.
	behindTLS bool
	logger    *slog.Logger     // nil: silent
	now       func() time.Time // nil: time.Now; tests pass a fake clock
}

// server is the example's handler, with the Issuer and Validator behind it.
type server struct {
	http.Handler
	iss *apitoken.Issuer
	v   *apitoken.Validator // Close it when done: it flushes last-used times
}

// newServer serves GET /devices, the admin API at /api/v1 (its OpenAPI
// document without a token) and the token console, over store.
func newServer(store apitoken.Store, o options) (*server, error) {
	if o.now == nil {
		o.now = time.Now
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	iss, err := apitoken.NewIssuer(store, policy, apitoken.WithClock(o.now))
	if err != nil {
		return nil, err
	}
	v, err := apitoken.NewValidator(store, policy, apitoken.WithLimiter(apitoken.NewLocalLimiter()),
		apitoken.WithSingleTenant(org), apitoken.WithClock(o.now))
	if err != nil {
		return nil, err
	}
	s := &server{iss: iss, v: v}
	if s.Handler, err = s.routes(o); err != nil {
		v.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *server) routes(o options) (http.Handler, error) {
	// The middleware answers 401/403/429/503 itself and logs why. The
	// Validator is single-tenant, so no org source is needed; the API
	// name, "devices", comes from the route's pattern.
	auth, err := httpauth.New(s.v, httpauth.WithRealm("devices"), httpauth.WithClock(o.now),
		httpauth.WithObserver(httpauth.SlogObserver(o.logger)))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /devices", auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.PrincipalFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": p.Hint, "org": p.OrgID, "devices": []string{"sensor-1", "sensor-2"}})
	})))
	if err := s.mountAdminAPI(mux, o); err != nil {
		return nil, err
	}
	if err := s.mountConsole(mux, o); err != nil {
		return nil, err
	}
	return mux, nil
}

// mountAdminAPI serves the admin API at /api/v1 behind the same token
// middleware as the devices API, for the "apitokens" API: a token with the
// token-admin role manages the demo org's tokens, and may grant no more
// than it holds. Its OpenAPI document needs no token, so that route skips
// the middleware.
func (s *server) mountAdminAPI(mux *http.ServeMux, o options) error {
	auth, err := httpauth.New(s.v, httpauth.WithAPIName("apitokens"), httpauth.WithRealm("admin"),
		httpauth.WithClock(o.now), httpauth.WithObserver(httpauth.SlogObserver(o.logger)))
	if err != nil {
		return err
	}
	admin, err := adminapi.New(s.iss, func(r *http.Request) (*adminapi.Manager, error) {
		p, ok := httpauth.PrincipalFrom(r.Context())
		if !ok {
			return nil, adminapi.ErrUnauthenticated
		}
		return manager(p)
	}, adminapi.WithPolicy(policy), adminapi.WithClock(o.now), adminapi.WithPrefix("/api/v1"))
	if err != nil {
		return err
	}
	mux.Handle("/api/v1/", auth.Wrap(admin)) // mounted as the console is (WithPrefix)
	mux.Handle("GET /api/v1/openapi.json", admin)
	return nil
}
