package httpauth

import (
	"net/http"
	"strings"

	"github.com/apitoken/apitoken"
)

// AccessForMethod is the default access rule: GET, HEAD and OPTIONS need
// read access, other methods full access.
func AccessForMethod(r *http.Request) apitoken.Access {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return apitoken.AccessRead
	}
	return apitoken.AccessFull
}

// apiName returns the request's API name and whether it is one: the host's
// (WithAPI, WithAPIName) or the first segment of the matched ServeMux
// pattern. Never the URL path: behind a catch-all pattern, "//billing/x",
// "/./billing/x" and "/%2Fbilling/x" would name "" or ".".
func (m *Middleware) apiName(r *http.Request) (string, bool) {
	var name string
	if m.api != nil {
		name = m.api(r)
	} else {
		name = patternAPI(r.Pattern)
	}
	return name, validAPIName(name)
}

// patternAPI returns the first path segment of a ServeMux pattern
// ("[METHOD ][HOST]/PATH"): "GET example.com/devices/{id}" → "devices".
func patternAPI(p string) string {
	if i := strings.IndexAny(p, " \t"); i >= 0 { // "GET /x"
		p = strings.TrimLeft(p[i+1:], " \t")
	}
	i := strings.IndexByte(p, '/') // "host/x"
	if i < 0 {
		return ""
	}
	p = p[i+1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	return p
}

// validAPIName reports whether name can name an API: not empty, not a dot
// segment, not a wildcard.
func validAPIName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "{}")
}
