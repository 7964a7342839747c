package httpauth_test

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)

// countingStore is a memstore that counts hash lookups and can fail them.
type countingStore struct {
	*memstore.Store
	lookups atomic.Int64
	down    atomic.Bool
}

var errDown = errors.New("dial tcp 127.0.0.1:5432: connection refused")

func (s *countingStore) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.GetByHash(ctx, h)
}

func (s *countingStore) ReadByHash(ctx context.Context, h apitoken.Hash, dst *apitoken.Token) error {
	s.lookups.Add(1)
	if s.down.Load() {
		return errDown
	}
	return s.Store.ReadByHash(ctx, h, dst)
}

// testPolicy is the policy most tests use.
func testPolicy() apitoken.Policy {
	return apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"ro":       {Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}},
			"operator": {Grants: apitoken.Grants{"devices": apitoken.AccessFull, "sites": apitoken.AccessRead}},
			"admin":    {Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}},
		},
		IPFilters:           map[string][]string{"office": {"10.0.0.0/8", "2001:db8::/32"}},
		AllowInlineIPFilter: true,
	}
}

func orgSpec() apitoken.Spec {
	return apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}}
}

func userSpec(user string) apitoken.Spec {
	return apitoken.Spec{Kind: apitoken.KindUser, OwnerID: user, Name: "laptop"}
}

// env is an Issuer and a Validator over one counting memstore with one
// clock.
type env struct {
	store *countingStore
	clock *apitokentest.Clock
	iss   *apitoken.Issuer
	v     *apitoken.Validator
	dir   *apitokentest.Directory
}

func newEnv(t testing.TB, pol apitoken.Policy, vopts ...apitoken.ValidatorOption) *env {
	t.Helper()
	e := &env{store: &countingStore{Store: memstore.New()}, clock: apitokentest.NewClock(t0), dir: &apitokentest.Directory{}}
	var err error
	e.iss, err = apitoken.NewIssuer(e.store, pol, apitoken.WithClock(e.clock.Now))
	require.NoError(t, err)
	opts := append([]apitoken.ValidatorOption{apitoken.WithClock(e.clock.Now), apitoken.WithUsers(e.dir)}, vopts...)
	e.v, err = newValidator(t, e.store, pol, opts...)
	require.NoError(t, err)
	return e
}

func (e *env) issue(t testing.TB, spec apitoken.Spec) (string, *apitoken.Token) {
	t.Helper()
	s, tok, err := e.iss.Issue(context.Background(), spec)
	require.NoError(t, err, "Issue(%+v)", spec)
	return s.Reveal(), tok
}

// mwEnv is an env with a protected handler, served on "/devices/{id}",
// that records what it saw.
type mwEnv struct {
	*env
	mw       *httpauth.Middleware
	handler  http.Handler
	calls    atomic.Int64
	lastSeen atomic.Pointer[apitoken.Principal]
	outcomes chan httpauth.Outcome
}

// newMW builds an mwEnv on a multi-tenant Validator with a local limiter;
// the org comes from the X-Org header, the client clock is the env's.
func newMW(t testing.TB, pol apitoken.Policy, mopts ...httpauth.Option) *mwEnv {
	t.Helper()
	m := &mwEnv{env: newEnv(t, pol, apitoken.WithLimiter(apitoken.NewLocalLimiter())), outcomes: make(chan httpauth.Outcome, 100)}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		p, ok := httpauth.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", 500)
			return
		}
		m.lastSeen.Store(p)
		io.WriteString(w, "hello "+p.Name)
	})
	opts := append([]httpauth.Option{
		httpauth.WithObserver(func(_ *http.Request, o httpauth.Outcome) {
			select {
			case m.outcomes <- o:
			default:
			}
		}),
		httpauth.WithOrg(func(r *http.Request) string { return r.Header.Get("X-Org") }),
		httpauth.WithClock(m.clock.Now),
	}, mopts...)
	var err error
	m.mw, err = httpauth.New(m.v, opts...)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/devices/{id}", m.mw.Wrap(next))
	m.handler = mux
	return m
}

// do sends method /devices/42 from 10.1.2.3 for org_1 with the
// Authorization header auth (none if empty), after applying mod.
func (m *mwEnv) do(method, auth string, mod ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/devices/42", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("X-Org", "org_1")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, f := range mod {
		f(r)
	}
	w := httptest.NewRecorder()
	m.handler.ServeHTTP(w, r)
	return w
}

// drain empties the outcome channel.
func (m *mwEnv) drain() {
	for len(m.outcomes) > 0 {
		<-m.outcomes
	}
}

var officeIP = netip.MustParseAddr("10.1.2.3")

// forge returns n well-formed tokens of prefix that no one issued: a random
// body and its correct checksum, as token generation builds them.
func forge(t testing.TB, prefix string, n int) []string {
	t.Helper()
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	r := rand.New(rand.NewPCG(7, 11))
	out := make([]string, n)
	for i := range out {
		body := make([]byte, apitoken.BodyLen)
		for j := range body {
			body[j] = base62[r.IntN(62)]
		}
		c := crc32.ChecksumIEEE(body)
		sum := make([]byte, apitoken.ChecksumLen)
		for j := len(sum) - 1; j >= 0; j-- {
			sum[j] = base62[c%62]
			c /= 62
		}
		out[i] = prefix + "_" + string(body) + string(sum)
		_, err := apitoken.Parse(out[i])
		require.NoError(t, err, "forged token %d is not well formed", i)
	}
	return out
}

// newValidator is apitoken.NewValidator that closes the Validator (and so
// stops its flush loop) when t ends.
func newValidator(t testing.TB, store apitoken.Store, pol apitoken.Policy, opts ...apitoken.ValidatorOption) (*apitoken.Validator, error) {
	t.Helper()
	v, err := apitoken.NewValidator(store, pol, opts...)
	if err == nil {
		t.Cleanup(func() { v.Close(context.Background()) })
	}
	return v, err
}
