package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/apitoken/apitoken"
)

// readObject reads a request body that must be empty or a JSON object of
// Content-Type application/json, at most max bytes, and returns its
// members (nil for an empty body). Unknown members are for the caller to
// reject.
func readObject(w http.ResponseWriter, r *http.Request, max int64) (map[string]json.RawMessage, *problem) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !isJSON(ct) {
		return nil, &problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Detail: "Send the body as Content-Type: application/json."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &problem{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Detail: fmt.Sprintf("The body is longer than %d bytes.", max)}
		}
		return nil, badRequest("", "The body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if ct == "" {
		return nil, &problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Detail: "Send the body as Content-Type: application/json."}
	}
	if bytes.TrimSpace(body)[0] != '{' {
		return nil, badRequest("", "The body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest("", "The body is not valid JSON.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("", "The body holds data after the JSON object.")
	}
	return m, nil
}

// isJSON reports whether ct is application/json, with at most a UTF-8
// charset parameter.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// members reads the members of a request object by name, recording the
// first problem.
type members struct {
	m    map[string]json.RawMessage
	prob *problem
}

// only fails on any member not in names.
func (ms *members) only(names ...string) {
	keys := make([]string, 0, len(ms.m))
	for k := range ms.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			ms.fail(badRequest(k, fmt.Sprintf("Unknown field %q.", k)))
			return
		}
	}
}

func (ms *members) fail(p *problem) {
	if ms.prob == nil {
		ms.prob = p
	}
}

// get decodes member name into dst (strictly: no unknown fields in
// nested objects) and reports whether it was present and whether it was
// null (dst untouched then).
func (ms *members) get(name string, dst any, what string) (present, null bool) {
	raw, ok := ms.m[name]
	if !ok || ms.prob != nil {
		return false, false
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return true, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		ms.fail(badRequest(name, fmt.Sprintf("The field %q must be %s.", name, what)))
		return false, false
	}
	return true, false
}

func (ms *members) lifetime(name string) (l apitoken.Lifetime, present, null bool) {
	var s string
	if present, null = ms.get(name, &s, `a lifetime such as "6 months", "90d" or "none"`); !present || null {
		return l, present, null
	}
	l, err := apitoken.ParseLifetime(s)
	if err != nil {
		ms.fail(badRequest(name, fmt.Sprintf(`The field %q must be a lifetime such as "6 months", "90d" or "none".`, name)))
		return l, false, false
	}
	return l, true, false
}

func (ms *members) access(name string) (a apitoken.Access, present, null bool) {
	var s string
	if present, null = ms.get(name, &s, `"none", "read" or "full"`); !present || null {
		return a, present, null
	}
	if err := a.UnmarshalText([]byte(s)); err != nil {
		ms.fail(badRequest(name, fmt.Sprintf(`The field %q must be "none", "read" or "full".`, name)))
		return a, false, false
	}
	return a, true, false
}

// grants reads the per-API levels of member name, with the level for all
// APIs of member allName (which may not also appear as "*").
func (ms *members) grants(name, allName string, base apitoken.Grants) (g apitoken.Grants, changed bool) {
	var raw map[string]string
	present, null := ms.get(name, &raw, `an object of API names to "none", "read" or "full"`)
	g = base
	if present {
		changed = true
		g = apitoken.Grants{}
		for api, s := range raw {
			var a apitoken.Access
			if err := a.UnmarshalText([]byte(s)); err != nil || api == "" {
				ms.fail(badRequest(name, fmt.Sprintf(`The field %q must map API names to "none", "read" or "full".`, name)))
				return nil, false
			}
			g[api] = a
		}
		if null {
			g = apitoken.Grants{}
		}
	}
	all, allPresent, allNull := ms.access(allName)
	if !allPresent || ms.prob != nil {
		return g, changed
	}
	if _, ok := raw[apitoken.AllAPIs]; ok {
		ms.fail(badRequest(allName, fmt.Sprintf(`Set %q or %s["*"], not both.`, allName, name)))
		return nil, false
	}
	out := make(apitoken.Grants, len(g)+1)
	for k, v := range g {
		out[k] = v
	}
	if allNull || all == apitoken.AccessNone {
		delete(out, apitoken.AllAPIs)
	} else {
		out[apitoken.AllAPIs] = all
	}
	return out, true
}

// ipFilterBody is the request form of an IP filter: a policy filter's
// name, or inline prefixes.
type ipFilterBody struct {
	Name     string   `json:"name"`
	Prefixes []string `json:"prefixes"`
}

const ipFilterWhat = `an object {"name": "office"} or {"prefixes": ["203.0.113.0/24"]}`
