package apitokentest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

// DefaultOrg is the org of a Kit's single-tenant Validator unless
// [WithSingleTenant] or [WithMultiTenant] says otherwise.
const DefaultOrg = "org_1"

// A Kit is one test's token stack, built by [New]. Its fields are the
// parts, for the test to use directly; do not replace them.
type Kit struct {
	Store     apitoken.Store      // a *memstore.Store unless WithStore gave another
	Policy    apitoken.Policy     // as given to every service
	Issuer    *apitoken.Issuer    // on Store and Clock
	Validator *apitoken.Validator // on Store, Clock and Users, with a LocalLimiter
	Clock     *Clock              // every service's clock
	Users     *Directory          // the Validator's user directory
	// Org is the single tenant's org; empty for a multi-tenant Validator.
	Org string

	t     testing.TB
	mopts []httpauth.Option
	mu    sync.Mutex
	mw    *httpauth.Middleware
}

// An Option configures [New].
type Option func(*config)

type config struct {
	store  apitoken.Store
	policy apitoken.Policy
	org    string
	iopts  []apitoken.IssuerOption
	vopts  []apitoken.ValidatorOption
	mopts  []httpauth.Option
}

// WithPolicy sets the policy of every service (default: the zero Policy).
func WithPolicy(p apitoken.Policy) Option { return func(c *config) { c.policy = p } }

// WithStore replaces the fresh memory store, for example with a wrapper
// that counts calls or fails on demand.
func WithStore(s apitoken.Store) Option { return func(c *config) { c.store = s } }

// WithSingleTenant makes the Validator single-tenant in org (default
// [DefaultOrg]).
func WithSingleTenant(org string) Option { return func(c *config) { c.org = org } }

// WithMultiTenant makes the Validator multi-tenant: a request names its
// org, and [Kit.Middleware] needs httpauth.WithOrg among
// [WithMiddlewareOptions].
func WithMultiTenant() Option { return func(c *config) { c.org = "" } }

// WithIssuerOptions adds options to NewIssuer, after the Kit's clock. The
// hash keys (apitoken.WithHashKeys) go to both the Issuer and the
// Validator.
func WithIssuerOptions(opts ...apitoken.IssuerOption) Option {
	return func(c *config) { c.iopts = append(c.iopts, opts...) }
}

// WithValidatorOptions adds options to NewValidator, after the Kit's
// clock, limiter, directory and tenancy, so a WithLimiter or WithUsers
// here replaces the Kit's.
func WithValidatorOptions(opts ...apitoken.ValidatorOption) Option {
	return func(c *config) { c.vopts = append(c.vopts, opts...) }
}

// WithMiddlewareOptions adds options to httpauth.New, after the Kit's
// clock.
func WithMiddlewareOptions(opts ...httpauth.Option) Option {
	return func(c *config) { c.mopts = append(c.mopts, opts...) }
}

// New builds a Kit for the test t and registers t.Cleanup to close its
// Validator. A service that cannot be built (an invalid policy or option)
// fails the test with t.Fatal.
func New(t testing.TB, opts ...Option) *Kit {
	t.Helper()
	c := config{org: DefaultOrg}
	for _, o := range opts {
		o(&c)
	}
	if c.store == nil {
		c.store = memstore.New()
	}
	k := &Kit{Store: c.store, Policy: c.policy, Clock: NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), Users: &Directory{}, Org: c.org, t: t}
	var err error
	iopts := append([]apitoken.IssuerOption{apitoken.WithClock(k.Clock.Now)}, c.iopts...)
	if k.Issuer, err = apitoken.NewIssuer(c.store, c.policy, iopts...); err != nil {
		t.Fatalf("apitokentest: %v", err)
	}
	vopts := []apitoken.ValidatorOption{
		apitoken.WithClock(k.Clock.Now),
		apitoken.WithLimiter(apitoken.NewLocalLimiter()),
		apitoken.WithUsers(k.Users),
	}
	if c.org != "" {
		vopts = append(vopts, apitoken.WithSingleTenant(c.org))
	}
	if k.Validator, err = apitoken.NewValidator(c.store, c.policy, append(vopts, c.vopts...)...); err != nil {
		t.Fatalf("apitokentest: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		if err := k.Validator.Close(context.Background()); err != nil {
			t.Errorf("apitokentest: Validator.Close: %v", err)
		}
	})
	k.mopts = append([]httpauth.Option{httpauth.WithClock(k.Clock.Now)}, c.mopts...)
	return k
}

// Issue issues a token for spec and returns its plaintext, failing the
// test if the Issuer refuses. An org token with no OrgID gets the Kit's
// Org (on a single-tenant Kit), and a spec with no Name is named "test".
func (k *Kit) Issue(spec apitoken.Spec) string {
	k.t.Helper()
	plaintext, _ := k.IssueToken(spec)
	return plaintext
}

// IssueToken is [Kit.Issue] that also returns the stored token (its ID,
// hint, expiry).
func (k *Kit) IssueToken(spec apitoken.Spec) (string, *apitoken.Token) {
	k.t.Helper()
	if spec.Kind == apitoken.KindOrg && spec.OrgID == "" {
		spec.OrgID = k.Org
	}
	if spec.Name == "" {
		spec.Name = "test"
	}
	secret, tok, err := k.Issuer.Issue(context.Background(), spec)
	if err != nil {
		k.t.Fatalf("apitokentest: Issue: %v", err)
	}
	return secret.Reveal(), tok
}

// Middleware returns the Kit's httpauth.Middleware over its Validator,
// built on first use with the Kit's clock and [WithMiddlewareOptions]; an
// error (a multi-tenant Kit without httpauth.WithOrg, say) fails the test.
func (k *Kit) Middleware() *httpauth.Middleware {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mw == nil {
		mw, err := httpauth.New(k.Validator, k.mopts...)
		if err != nil {
			k.t.Fatalf("apitokentest: %v", err)
		}
		k.mw = mw
	}
	return k.mw
}

// Handler returns a handler for httptest: a new ServeMux that serves
// pattern with h behind the Kit's Middleware. The pattern's first segment
// is the API name, as in production ("/devices/{id}" → "devices").
func (k *Kit) Handler(pattern string, h http.Handler) http.Handler {
	k.t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pattern, k.Middleware().Wrap(h))
	return mux
}

// NewRequest is httptest.NewRequest(method, target, nil) that presents
// token as "Authorization: Bearer <token>" (no header if token is empty).
// Its client address is httptest's, 192.0.2.1.
func NewRequest(method, target, token string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}
