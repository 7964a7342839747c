package adminui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/adminui"
	"github.com/apitoken/apitoken/apitokentest"
)

// TestWrongMount: a console mounted so that no request reaches a page
// answers with a styled 404 page that says how to mount it; a right
// mount is unchanged.
func TestWrongMount(t *testing.T) {
	const (
		outside  = `No such page. The console serves the paths under /settings/api-tokens (adminui.WithPrefix): mount it with mux.Handle(&#34;/settings/api-tokens/&#34;, h), not behind http.StripPrefix.`
		noPrefix = `No such page. Without adminui.WithPrefix the console serves paths from the root: if it is mounted at /settings/api-tokens, build it with adminui.WithPrefix(&#34;/settings/api-tokens&#34;) and mount it with mux.Handle(&#34;/settings/api-tokens/&#34;, h).`
	)
	withPrefix := []adminui.Option{adminui.WithPrefix(prefix)}
	for _, c := range []struct {
		name   string
		opts   []adminui.Option
		mount  func(http.Handler) *http.ServeMux
		path   string
		status int
		msg    string
	}{
		{"WithPrefix behind StripPrefix", withPrefix, strip(prefix), orgPage, 404, outside},
		{"WithPrefix behind StripPrefix, home", withPrefix, strip(prefix), prefix + "/", 404, outside},
		{"WithPrefix elsewhere", withPrefix, mountAt("/tokens/"), "/tokens/orgs/org_1/", 404, outside},
		{"neither, home", nil, mountAt(prefix + "/"), prefix + "/", 404, noPrefix},
		{"neither, org page", nil, mountAt(prefix + "/"), orgPage, 404, noPrefix},
		{"neither, edit page", nil, mountAt(prefix + "/"), orgPage + "some-id/edit", 404, noPrefix},
		{"WithPrefix, no such page", withPrefix, mountAt(prefix + "/"), prefix + "/nope/", 404, "No such page."},
		{"WithPrefix", withPrefix, mountAt(prefix + "/"), orgPage, 200, ""},
		{"root", nil, mountAt("/"), "/orgs/org_1/", 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			kit := apitokentest.New(t)
			ui, err := adminui.New(kit.Issuer, authorize, c.opts...)
			require.NoError(t, err)
			srv := httptest.NewServer(c.mount(ui))
			t.Cleanup(srv.Close)
			status, ctype, body := get(t, srv, c.path)
			require.Equal(t, c.status, status, body)
			if c.msg == "" {
				return
			}
			assert.Contains(t, body, `<p class="message" role="alert" data-status="404">`+c.msg+`</p>`)
			assert.Equal(t, "text/html; charset=utf-8", ctype)
			if c.msg == "No such page." {
				return // a right mount's own 404, with the usual links
			}
			// Styled: the page links its assets relative to itself, and
			// they resolve through the same wrong mount.
			assert.Contains(t, body, `<link rel="stylesheet" href="assets/console.css">`)
			assert.Contains(t, body, `<script src="assets/console.js" defer></script>`)
			dir := c.path[:strings.LastIndex(c.path, "/")+1]
			for asset, want := range map[string]string{"console.css": "text/css", "console.js": "text/javascript"} {
				status, ctype, _ := get(t, srv, dir+"assets/"+asset)
				assert.Equal(t, http.StatusOK, status, asset)
				assert.True(t, strings.HasPrefix(ctype, want), "%s: %s", asset, ctype)
			}
		})
	}
}

// strip mounts h at p+"/" behind http.StripPrefix(p).
func strip(p string) func(http.Handler) *http.ServeMux {
	return func(h http.Handler) *http.ServeMux {
		mux := http.NewServeMux()
		mux.Handle(p+"/", http.StripPrefix(p, h))
		return mux
	}
}

// mountAt mounts h at pattern as it is.
func mountAt(pattern string) func(http.Handler) *http.ServeMux {
	return func(h http.Handler) *http.ServeMux {
		mux := http.NewServeMux()
		mux.Handle(pattern, h)
		return mux
	}
}

// get fetches path from srv as alice.
func get(t *testing.T, srv *httptest.Server, path string) (status int, ctype, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "session", Value: "alice"})
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}
