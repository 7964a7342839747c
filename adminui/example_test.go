package adminui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/stores/memstore"
)

// Example mounts the console at /settings/api-tokens for managers the host
// recognises by a session cookie (the admin API's hook), and creates a
// token with its form, as a browser on the page would.
func Example() {
	policy := apitoken.Policy{
		Prefix:           "acme",
		DefaultLifetime:  apitoken.Months(6),
		AllowedLifetimes: []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)},
	}
	iss, err := apitoken.NewIssuer(memstore.New(), policy)
	if err != nil {
		panic(err)
	}
	sessions := map[string]string{"s3ss10n": "42"} // the host's sessions: cookie → user ID
	authorize := func(r *http.Request) (*adminapi.Manager, error) {
		c, err := r.Cookie("session")
		if err != nil || sessions[c.Value] == "" {
			return nil, adminapi.ErrUnauthenticated // a 401 page
		}
		user := sessions[c.Value]
		return &adminapi.Manager{Actor: "user:" + user, UserID: user,
			Privileges: &apitoken.Principal{Grants: apitoken.Grants{"*": apitoken.AccessFull}},
			May:        func(s adminapi.Scope) bool { return s.Self }}, nil // only their own tokens
	}
	mux := http.NewServeMux()

	// README: Token console
	ui, err := adminui.New(iss, authorize, // the admin API's hook: who manages which tokens
		adminui.WithPrefix("/settings/api-tokens"),
		adminui.WithTitle("Acme"),
		adminui.WithAPIs(adminui.API{Name: "billing", Title: "Billing"}, adminui.API{Name: "devices", Title: "Devices"}))
	mux.Handle("/settings/api-tokens/", ui)
	// end of the README snippet
	if err != nil {
		panic(err)
	}

	send := func(method, path string, form url.Values) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin") // a form of the console's own page
		r.AddCookie(&http.Cookie{Name: "session", Value: "s3ss10n"})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	w := send("GET", "/settings/api-tokens/", nil)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), "No tokens yet."))

	w = send("POST", "/settings/api-tokens/new", url.Values{
		"name": {"laptop"}, "access.billing": {"read"}, "access.devices": {"full"}, "lifetime": {"12mo"}})
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), strings.Contains(w.Body.String(), `value="acme_`))

	page, _ := iss.List(context.Background(), apitoken.Filter{Owner: apitoken.UserOwner("42")})
	fmt.Println(page.Tokens[0].Name, page.Tokens[0].Grants)
	// Output:
	// 200 true
	// 201 no-store true
	// laptop map[billing:read devices:full]
}
