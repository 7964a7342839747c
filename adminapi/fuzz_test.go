package adminapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzBody sends arbitrary bodies to every route that reads one: the
// answer is never a 5xx, and a refused request changes nothing.
func FuzzBody(f *testing.F) {
	for _, seed := range []string{
		`{"name":"ci","roles":["observer"],"lifetime":"6mo"}`,
		`{"name":"x","grants":{"devices":"read"},"all_apis":"none","ip_filter":{"prefixes":["10.0.0.0/8"]}}`,
		`{"lifetime":"12mo","grace":"1h"}`,
		`{"description":null,"rate_limit":null,"metadata":{"a":"b"}}`,
		`{"name":"x"} {}`, `[]`, `null`, `{"name":`, `{}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		id := e.create("alice", "/orgs/org_a/apitokens", map[string]any{"name": "ci", "roles": []string{"observer"}})["id"].(string)
		one := "/orgs/org_a/apitokens/" + id
		for _, r := range []struct{ method, path string }{
			{"POST", "/orgs/org_a/apitokens"}, {"PATCH", one}, {"POST", one + "/regenerate"},
			{"POST", one + "/revoke"}, {"POST", one + "/reveal"}, {"POST", "/orgs/org_a/apitokens/revoke-all"},
		} {
			before := e.snapshot()
			hr := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
			hr.Header.Set("Content-Type", "application/json")
			hr.AddCookie(&http.Cookie{Name: "session", Value: "alice"})
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, hr)
			require.Less(t, w.Code, 500, "%s %s %q: %s", r.method, r.path, body, w.Body)
			if w.Code >= 400 {
				require.Equal(t, before, e.snapshot(), "%s %s %q changed something", r.method, r.path, body)
			}
		}
	})
}
