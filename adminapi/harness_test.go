package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/stores/memstore"
)

// exchange is one request the suite made and the response it got.
type exchange struct {
	req      *http.Request
	reqBody  []byte
	status   int
	header   http.Header
	respBody []byte
}

// suite collects every exchange of every test, for TestMain's key search
// and the OpenAPI validation.
var suite struct {
	mu        sync.Mutex
	exchanges []exchange
	keys      map[string]string // key → "METHOD pattern" of the response that returned it
}

func record(x exchange) {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	suite.exchanges = append(suite.exchanges, x)
}

// TestMain checks, after all tests, that each key the API returned appears
// in exactly one response body of the whole suite: the create, regenerate
// or reveal response that returned it (reveal returns a key again, so a
// recovered key appears in its create and its reveal responses, and those
// only).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		for _, check := range []func() error{checkKeys, checkCoverage, func() error { return goleak.Find() }} {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// keyRoute reports whether a response to method path may carry a key.
func keyRoute(method, path string) bool {
	if method != http.MethodPost {
		return false
	}
	return strings.HasSuffix(path, "/regenerate") || strings.HasSuffix(path, "/reveal") ||
		strings.HasSuffix(path, "/apitokens")
}

func checkKeys() error {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	return keyLeaks(suite.exchanges, fullRun())
}

// keyLeaks finds every key a create, regenerate or reveal response
// returned, and fails if any response body or header holds one without
// being such a response (with Cache-Control: no-store); with wantSome, it
// also fails when no key was returned at all.
func keyLeaks(exchanges []exchange, wantSome bool) error {
	type keyed struct{ Key string }
	keys := map[string]bool{}
	for _, x := range exchanges {
		var k keyed
		if x.status < 300 && keyRoute(x.req.Method, x.req.URL.Path) && json.Unmarshal(x.respBody, &k) == nil && k.Key != "" {
			keys[k.Key] = true
		}
	}
	if len(keys) == 0 && wantSome {
		return errors.New("key search: no key was returned at all")
	}
	for key := range keys {
		for _, x := range exchanges {
			if !bytes.Contains(x.respBody, []byte(key)) && !strings.Contains(fmt.Sprint(x.header), key) {
				continue
			}
			if !keyRoute(x.req.Method, x.req.URL.Path) || x.status >= 300 {
				return fmt.Errorf("key search: a key appears in the response to %s %s (%d)", x.req.Method, x.req.URL.Path, x.status)
			}
			if x.header.Get("Cache-Control") != "no-store" {
				return fmt.Errorf("key search: the response to %s %s has a key without Cache-Control: no-store", x.req.Method, x.req.URL.Path)
			}
		}
	}
	return nil
}

var (
	sealKey = bytes.Repeat([]byte{7}, 32)
	start   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testPolicy: 3, 6 or 12 months (6 by default), two roles, a named IP
// filter and inline ones.
func testPolicy() apitoken.Policy {
	return apitoken.Policy{
		Prefix:           "acme",
		DefaultLifetime:  apitoken.Months(6),
		AllowedLifetimes: []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)},
		Roles: map[string]apitoken.Role{
			"observer": {Description: "reads devices", Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"admin":    {Grants: apitoken.Grants{"*": apitoken.AccessFull}},
		},
		IPFilters:           map[string][]string{"office": {"203.0.113.0/24"}},
		AllowInlineIPFilter: true,
	}
}

// env is one test's admin API over a memory store, a fake clock and the
// managers below.
type env struct {
	t      *testing.T
	store  *memstore.Store
	iss    *apitoken.Issuer
	clock  *apitokentest.Clock
	h      *adminapi.Handler
	events []apitoken.Event
	mu     sync.Mutex
}

// managers is the test's authorization hook. It knows these managers, by
// the value of their "session" cookie (as the document's illustration of
// host authentication has it):
//
//	alice: her own tokens and org_a's, as an observer
//	bob:   org_b's tokens, with every privilege
//	root:  every user's tokens, with every privilege
//	nobody: a signed-in user who may manage nothing
//
// No cookie is unauthenticated; "broken" makes the hook fail otherwise.
func managers(r *http.Request) (*adminapi.Manager, error) {
	all := &apitoken.Principal{Roles: []string{"observer", "admin"}, Grants: apitoken.Grants{"*": apitoken.AccessFull}}
	c, err := r.Cookie("session")
	if err != nil {
		return nil, fmt.Errorf("no session: %w", adminapi.ErrUnauthenticated)
	}
	switch c.Value {
	case "alice":
		return &adminapi.Manager{Actor: "user:alice", UserID: "alice",
			Privileges: &apitoken.Principal{Roles: []string{"observer"}},
			May: func(s adminapi.Scope) bool {
				return s.Self || s.Owner == apitoken.OrgOwner("org_a")
			}}, nil
	case "bob":
		return &adminapi.Manager{Actor: "user:bob", UserID: "bob", Privileges: all,
			May: func(s adminapi.Scope) bool { return s.Owner == apitoken.OrgOwner("org_b") }}, nil
	case "root":
		return &adminapi.Manager{Actor: "user:root", UserID: "root", Privileges: all,
			May: func(s adminapi.Scope) bool { return s.Owner.Kind == apitoken.KindUser }}, nil
	case "nobody":
		return &adminapi.Manager{Actor: "user:nobody", UserID: "nobody"}, nil
	}
	return nil, errors.New("directory down")
}

func newEnv(t *testing.T, opts ...adminapi.Option) *env {
	t.Helper()
	return newEnvWith(t, testPolicy(), opts...)
}

// newEnvWith is newEnv under another policy.
func newEnvWith(t *testing.T, pol apitoken.Policy, opts ...adminapi.Option) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New(), clock: apitokentest.NewClock(start)}
	iss, err := apitoken.NewIssuer(e.store, pol, apitoken.WithClock(e.clock.Now),
		apitoken.WithSealKeys(sealKey), apitoken.WithAudit(func(_ context.Context, ev apitoken.Event) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
		}))
	require.NoError(t, err)
	e.iss = iss
	opts = append([]adminapi.Option{adminapi.WithPolicy(pol), adminapi.WithClock(e.clock.Now)}, opts...)
	e.h, err = adminapi.New(iss, managers, opts...)
	require.NoError(t, err)
	return e
}

// resp is a recorded response.
type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r resp) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body %s", r.Body)
	return m
}

// req is one request to send: body is JSON-encoded unless it is a string
// (sent as is) or nil; a JSON body gets Content-Type application/json
// unless header sets one.
type req struct {
	method, path, as string
	body             any
	header           map[string]string
}

func (e *env) do(r req) resp {
	e.t.Helper()
	return e.send(e.h, r)
}

func (e *env) send(h http.Handler, r req) resp {
	e.t.Helper()
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	default:
		var err error
		body, err = json.Marshal(b)
		require.NoError(e.t, err)
	}
	hr := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.as != "" {
		hr.AddCookie(&http.Cookie{Name: "session", Value: r.as})
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	res := w.Result()
	got, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	x := exchange{req: hr, reqBody: body, status: res.StatusCode, header: res.Header, respBody: got}
	record(x)
	validate(e.t, e.h, x)
	return resp{Code: res.StatusCode, Header: res.Header, Body: got}
}

// create issues a token in the collection at path as manager as and
// returns the response's JSON.
func (e *env) create(as, path string, body map[string]any) map[string]any {
	e.t.Helper()
	r := e.do(req{method: "POST", path: path, as: as, body: body})
	require.Equal(e.t, http.StatusCreated, r.Code, "POST %s: %s", path, r.Body)
	return r.JSON(e.t)
}

// snapshot returns every stored token's JSON, to show that a refused
// request changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	for tok, err := range e.iss.All(context.Background(), apitoken.Filter{}) {
		require.NoError(e.t, err)
		j, err := json.Marshal(tok)
		require.NoError(e.t, err)
		fmt.Fprintf(&b, "%s %x %x\n", j, tok.Hash, tok.Sealed)
	}
	return b.String()
}
