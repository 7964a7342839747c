package adminapi_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/adminapi"
)

// spec is the embedded document, parsed once, and the validator over it.
var spec struct {
	once  sync.Once
	mu    sync.Mutex // the validator is used by one exchange at a time
	doc   libopenapi.Document
	v     validator.Validator
	err   error
	cover map[string]bool // "METHOD /pattern" → a 2xx exchange was validated
}

func loadSpec(t testing.TB) {
	t.Helper()
	spec.once.Do(func() {
		spec.doc, spec.err = libopenapi.NewDocument(adminapi.OpenAPI())
		if spec.err != nil {
			return
		}
		var errs []error
		spec.v, errs = validator.NewValidator(spec.doc)
		if len(errs) > 0 {
			spec.err = fmt.Errorf("%v", errs)
			return
		}
		spec.cover = map[string]bool{}
	})
	require.NoError(t, spec.err)
}

// documentedRoutes returns "METHOD /path" for every operation of the
// document.
func documentedRoutes(t testing.TB) []string {
	t.Helper()
	loadSpec(t)
	m, err := spec.doc.BuildV3Model()
	require.NoError(t, err)
	var out []string
	for path, item := range m.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func servedRoutes(h *adminapi.Handler) []string {
	var out []string
	for _, r := range h.Routes() {
		out = append(out, r.Method+" "+r.Pattern)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIRoutes: every route the handler serves is in the document,
// and the reverse.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t)
	assert.Equal(t, documentedRoutes(t), servedRoutes(e.h))
}

func TestOpenAPIDocumentValid(t *testing.T) {
	loadSpec(t)
	ok, errs := spec.v.ValidateDocument()
	for _, err := range errs {
		t.Errorf("%s: %s", err.Message, err.Reason)
	}
	assert.True(t, ok)
}

// routeOf returns the served route ("METHOD /pattern") a request matches,
// or "".
func routeOf(h *adminapi.Handler, method, path string) string {
	segs := strings.Split(path, "/")
	best := ""
	for _, r := range h.Routes() {
		if r.Method != method {
			continue
		}
		ps := strings.Split(r.Pattern, "/")
		if len(ps) != len(segs) {
			continue
		}
		match, literal := true, 0
		for i := range ps {
			if strings.HasPrefix(ps[i], "{") {
				continue
			}
			if ps[i] != segs[i] {
				match = false
				break
			}
			literal++
		}
		if match && (best == "" || literal > strings.Count(best, "/")-strings.Count(best, "{")) {
			best = r.Method + " " + r.Pattern
		}
	}
	return best
}

// validate checks one exchange against the document: a request the
// handler accepted (2xx) must be valid, a request the document rejects
// must have been refused (4xx), and every response must be valid. An
// exchange on no documented route (an unknown path, a method the path
// does not serve) must be a problem.
func validate(t testing.TB, h *adminapi.Handler, x exchange) {
	t.Helper()
	loadSpec(t)
	route := routeOf(h, x.req.Method, x.req.URL.Path)
	if route == "" {
		assert.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, x.status, "%s %s", x.req.Method, x.req.URL.Path)
		assert.Equal(t, "application/problem+json", x.header.Get("Content-Type"))
		return
	}
	spec.mu.Lock()
	defer spec.mu.Unlock()
	newReq := func() *http.Request {
		r := x.req.Clone(t.Context())
		r.Body = io.NopCloser(bytes.NewReader(x.reqBody))
		r.ContentLength = int64(len(x.reqBody))
		return r
	}
	reqOK, reqErrs := spec.v.ValidateHttpRequest(newReq())
	switch {
	case x.status < 300 && !reqOK:
		t.Errorf("%s %s was accepted (%d) but the document rejects it: %s", x.req.Method, x.req.URL, x.status, describe(reqErrs))
	case !reqOK && (x.status < 400 || x.status >= 500):
		t.Errorf("%s %s breaks the document but got %d: %s", x.req.Method, x.req.URL, x.status, describe(reqErrs))
	}
	res := &http.Response{StatusCode: x.status, Header: x.header.Clone(), Body: io.NopCloser(bytes.NewReader(x.respBody)),
		Request: newReq(), ContentLength: int64(len(x.respBody))}
	if ok, errs := spec.v.ValidateHttpResponse(newReq(), res); !ok {
		t.Errorf("the response to %s %s (%d) breaks the document: %s\n%s", x.req.Method, x.req.URL, x.status, describe(errs), x.respBody)
	}
	if x.status < 300 {
		spec.cover[route] = true
	}
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n\t" + e.Error())
	}
	return b.String()
}

// fullRun reports whether the whole suite runs (no -run filter), so that
// suite-wide checks apply.
func fullRun() bool {
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() == ""
}

// checkCoverage: every documented operation got a validated 2xx answer.
func checkCoverage() error {
	if !fullRun() || spec.cover == nil {
		return nil
	}
	var missing []string
	m, err := spec.doc.BuildV3Model()
	if err != nil {
		return err
	}
	for path, item := range m.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			if r := strings.ToUpper(method) + " " + path; !spec.cover[r] {
				missing = append(missing, r)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no successful exchange validated for %s", strings.Join(missing, ", "))
	}
	return nil
}

// TestOpenAPIValidatorCatches: the validation is not vacuous: a token
// response with a field the document does not have (a hash), a request
// with an unknown field, and an undocumented status all fail it.
func TestOpenAPIValidatorCatches(t *testing.T) {
	loadSpec(t)
	get, err := http.NewRequest("GET", "/orgs/org_a/apitokens/x", nil)
	require.NoError(t, err)
	body := `{"id":"x","kind":"org","owner_id":"org_a","name":"n","hint":"h","created_at":"2026-01-01T00:00:00Z",` +
		`"issued_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","version":1,"status":"active"%s}`
	respond := func(status int, b string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(b)), Request: get}
	}
	spec.mu.Lock()
	defer spec.mu.Unlock()
	ok, errs := spec.v.ValidateHttpResponse(get, respond(200, fmt.Sprintf(body, "")))
	require.True(t, ok, "%s", describe(errs))
	ok, _ = spec.v.ValidateHttpResponse(get, respond(200, fmt.Sprintf(body, `,"hash":"abc"`)))
	assert.False(t, ok, "a hash in a token")
	ok, _ = spec.v.ValidateHttpResponse(get, respond(200, fmt.Sprintf(body, `,"key":"acme_x"`)))
	assert.False(t, ok, "a key in a GET response")
	ok, _ = spec.v.ValidateHttpResponse(get, respond(418, `{}`))
	assert.False(t, ok, "an undocumented status")
	post, err := http.NewRequest("POST", "/orgs/org_a/apitokens", strings.NewReader(`{"name":"x","owner_id":"org_b"}`))
	require.NoError(t, err)
	post.Header.Set("Content-Type", "application/json")
	post.AddCookie(&http.Cookie{Name: "session", Value: "bob"})
	ok, _ = spec.v.ValidateHttpRequest(post)
	assert.False(t, ok, "an unknown request field")
}
