package apitokentest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

// policy is the host's policy in these tests.
var policy = apitoken.Policy{
	Prefix: "acme",
	Roles: map[string]apitoken.Role{
		"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
		"operator": {Grants: apitoken.Grants{"devices": apitoken.AccessFull}},
	},
}

// devices is the host's handler under test.
var devices = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, _ := httpauth.PrincipalFrom(r.Context())
	fmt.Fprintf(w, "device %s for %s", r.PathValue("id"), p.OrgID)
})

// TestDevices is the package doc's and the README's host handler test,
// verbatim.
func TestDevices(t *testing.T) {
	kit := apitokentest.New(t, apitokentest.WithPolicy(policy))
	token := kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"observer"}})
	h := kit.Handler("/devices/{id}", devices)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, apitokentest.NewRequest("GET", "/devices/42", token))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /devices/42: %d %s", w.Code, w.Body)
	}
}

// serve sends method target with token to h and returns the status and body.
func serve(h http.Handler, method, target, token string) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, apitokentest.NewRequest(method, target, token))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func expect(t *testing.T, h http.Handler, method, target, token string, want int) string {
	t.Helper()
	code, body := serve(h, method, target, token)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, target, code, body, want)
	}
	return body
}

func TestOrgToken(t *testing.T) {
	kit := apitokentest.New(t, apitokentest.WithPolicy(policy))
	token, tok := kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"observer"}})
	if tok.OrgID != apitokentest.DefaultOrg || tok.Name != "test" {
		t.Errorf("issued OrgID %q Name %q, want %q %q", tok.OrgID, tok.Name, apitokentest.DefaultOrg, "test")
	}
	if kit.Org != apitokentest.DefaultOrg {
		t.Errorf("Kit.Org = %q, want %q", kit.Org, apitokentest.DefaultOrg)
	}
	h := kit.Handler("/devices/{id}", devices)

	if got, want := expect(t, h, "GET", "/devices/42", token, 200), "device 42 for org_1"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	expect(t, h, "POST", "/devices/42", token, 403) // observer reads only
	expect(t, h, "GET", "/devices/42", "", 401)
	if err := kit.Issuer.Revoke(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, h, "GET", "/devices/42", token, 401)
}

func TestUserToken(t *testing.T) {
	kit := apitokentest.New(t, apitokentest.WithPolicy(policy))
	token := kit.Issue(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_7"})
	h := kit.Handler("/devices/{id}", devices)

	expect(t, h, "GET", "/devices/42", token, 403) // no membership yet
	kit.Users.Set("user_7", "org_1", apitoken.Membership{Roles: []string{"operator"}})
	expect(t, h, "POST", "/devices/42", token, 200)
	kit.Users.SetError(errors.New("directory down"))
	expect(t, h, "GET", "/devices/42", token, 503)
	kit.Users.SetError(nil)
	kit.Users.Remove("user_7", "org_1")
	expect(t, h, "GET", "/devices/42", token, 403)
}

func TestClockDrivesExpiryAndLimits(t *testing.T) {
	pol := policy
	pol.OrgRateLimit = apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 1}
	kit := apitokentest.New(t, apitokentest.WithPolicy(pol))
	if got, want := kit.Clock.Now(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("the clock starts at %v, want %v", got, want)
	}
	token, tok := kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"observer"}, Lifetime: apitoken.Hours(1)})
	if want := kit.Clock.Now().Add(time.Hour); !tok.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %v, want %v (the Issuer runs on the Kit's clock)", tok.ExpiresAt, want)
	}
	h := kit.Handler("/devices/{id}", devices)

	expect(t, h, "GET", "/devices/1", token, 200)
	expect(t, h, "GET", "/devices/1", token, 429)
	kit.Clock.Advance(time.Minute)
	expect(t, h, "GET", "/devices/1", token, 200)
	kit.Clock.Advance(time.Hour)
	expect(t, h, "GET", "/devices/1", token, 401)
}

func TestClockDrivesFailureThrottle(t *testing.T) {
	kit := apitokentest.New(t, apitokentest.WithPolicy(policy), apitokentest.WithMiddlewareOptions(
		httpauth.WithFailureLimit(apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 1})))
	h := kit.Handler("/devices/{id}", devices)
	bad := "acme_nope"
	expect(t, h, "GET", "/devices/1", bad, 401)
	expect(t, h, "GET", "/devices/1", bad, 429)
	kit.Clock.Advance(time.Minute)
	expect(t, h, "GET", "/devices/1", bad, 401)
}

func TestTenancy(t *testing.T) {
	t.Run("SingleTenant", func(t *testing.T) {
		kit := apitokentest.New(t, apitokentest.WithPolicy(policy), apitokentest.WithSingleTenant("org_9"))
		token, tok := kit.IssueToken(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"observer"}})
		if tok.OrgID != "org_9" {
			t.Errorf("OrgID %q, want org_9", tok.OrgID)
		}
		expect(t, kit.Handler("/devices/{id}", devices), "GET", "/devices/1", token, 200)
	})
	t.Run("MultiTenant", func(t *testing.T) {
		kit := apitokentest.New(t, apitokentest.WithPolicy(policy), apitokentest.WithMultiTenant(),
			apitokentest.WithMiddlewareOptions(
				httpauth.WithOrg(func(r *http.Request) string { return r.PathValue("org") }),
				httpauth.WithAPIName("devices")))
		if kit.Org != "" {
			t.Errorf("Kit.Org = %q, want empty", kit.Org)
		}
		token := kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_2", Roles: []string{"observer"}})
		h := kit.Handler("/orgs/{org}/devices/{id}", devices)
		if got, want := expect(t, h, "GET", "/orgs/org_2/devices/1", token, 200), "device 1 for org_2"; got != want {
			t.Errorf("body %q, want %q", got, want)
		}
		expect(t, h, "GET", "/orgs/org_1/devices/1", token, 401)
	})
	t.Run("MultiTenantWithoutOrgFails", func(t *testing.T) {
		ft := &fatalTB{TB: t}
		kit := apitokentest.New(ft, apitokentest.WithMultiTenant())
		msg := ft.catch(func() { kit.Middleware() })
		if !strings.Contains(msg, "WithOrg") {
			t.Errorf("Middleware on a multi-tenant Kit without WithOrg: fatal %q, want one naming WithOrg", msg)
		}
	})
}

func TestFailures(t *testing.T) {
	ft := &fatalTB{TB: t}
	kit := apitokentest.New(ft, apitokentest.WithPolicy(policy))
	if msg := ft.catch(func() { kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"nobody"}}) }); !strings.Contains(msg, "apitokentest: Issue: ") {
		t.Errorf("Issue with an undefined role: fatal %q", msg)
	}
	if msg := ft.catch(func() { apitokentest.New(ft, apitokentest.WithPolicy(apitoken.Policy{Prefix: "Bad!"})) }); !strings.Contains(msg, "Prefix") {
		t.Errorf("New with a bad policy: fatal %q, want one naming Prefix", msg)
	}
}

func TestCleanupClosesValidator(t *testing.T) {
	var kit *apitokentest.Kit
	var token string
	t.Run("inner", func(t *testing.T) {
		kit = apitokentest.New(t)
		token = kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, Grants: apitoken.Grants{"devices": apitoken.AccessRead}})
	})
	_, err := kit.Validator.Validate(context.Background(), token, apitoken.Request{API: "devices", Access: apitoken.AccessRead})
	if !errors.Is(err, apitoken.ErrClosed) {
		t.Errorf("Validate after the test's cleanup = %v, want ErrClosed", err)
	}
}

// downStore is a memstore whose hash lookups fail.
type downStore struct{ *memstore.Store }

func (downStore) GetByHash(context.Context, apitoken.Hash) (*apitoken.Token, error) {
	return nil, errors.New("connection refused")
}

func (downStore) ReadByHash(context.Context, apitoken.Hash, *apitoken.Token) error {
	return errors.New("connection refused")
}

func TestWithStore(t *testing.T) {
	store := downStore{memstore.New()}
	kit := apitokentest.New(t, apitokentest.WithStore(store), apitokentest.WithPolicy(policy))
	if kit.Store != apitoken.Store(store) {
		t.Errorf("Kit.Store is not the store WithStore gave")
	}
	token := kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"observer"}})
	expect(t, kit.Handler("/devices/{id}", devices), "GET", "/devices/1", token, 503)
}

func TestHostOptionsWin(t *testing.T) {
	dir := &apitokentest.Directory{}
	dir.Set("user_7", "org_1", apitoken.Membership{Roles: []string{"observer"}})
	kit := apitokentest.New(t, apitokentest.WithPolicy(policy), apitokentest.WithValidatorOptions(apitoken.WithUsers(dir)))
	token := kit.Issue(apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_7"})
	expect(t, kit.Handler("/devices/{id}", devices), "GET", "/devices/1", token, 200)
}

func TestNewRequest(t *testing.T) {
	r := apitokentest.NewRequest("GET", "/x", "tok")
	if got := r.Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("Authorization %q, want %q", got, "Bearer tok")
	}
	if r = apitokentest.NewRequest("GET", "/x", ""); r.Header.Get("Authorization") != "" {
		t.Errorf("an empty token still sets Authorization")
	}
}

// fatalTB is a testing.TB whose Fatal and Fatalf record the message and
// stop the function passed to catch, instead of the test.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(fatalStop{})
}

// catch runs fn and returns the message of the Fatal call that stopped it
// (empty if none did).
func (f *fatalTB) catch(fn func()) (msg string) {
	f.msg = ""
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalStop); !ok {
				panic(r)
			}
		}
		msg = f.msg
	}()
	fn()
	return ""
}
