package httpauth

import (
	"net/http"
	"net/url"
	"strings"
)

// DefaultAPIKeyHeader is the header WithAPIKeyHeader("") reads, and
// DefaultQueryParam the parameter WithQueryParam("") reads (RFC 6750 §2.3).
const (
	DefaultAPIKeyHeader = "X-API-Key"
	DefaultQueryParam   = "access_token"
)

// Where a request's token came from, as bits: the middleware removes what
// it consumed from the request it passes on.
const (
	fromBearer uint8 = 1 << iota
	fromAPIKey
	fromQuery
	fromExtractor
)

const headerAuthorization = "Authorization"

// credentials returns the one token r carries and where it found it:
// [ErrNoCredentials] if none, [ErrBadCredentials] if malformed (not an RFC
// 6750 b64token), two different ones, or a query parameter beside another
// source or repeated.
func (m *Middleware) credentials(r *http.Request) (token string, from uint8, err error) {
	add := func(t string, src uint8) error {
		if token != "" && t != token {
			return ErrBadCredentials // two different tokens
		}
		token, from = t, from|src
		return nil
	}
	if m.bearer {
		for _, h := range r.Header[headerAuthorization] { // canonical: no re-canonicalizing
			t, ok, err := bearerToken(h)
			if err != nil {
				return "", 0, err
			}
			if ok {
				if err := add(t, fromBearer); err != nil {
					return "", 0, err
				}
			}
		}
	}
	if m.apiKeyHeader != "" {
		for _, h := range r.Header[m.apiKeyHeader] {
			t := trimOWS(h)
			if !b64token(t) {
				return "", 0, ErrBadCredentials
			}
			if err := add(t, fromAPIKey); err != nil {
				return "", 0, err
			}
		}
	}
	if m.queryParam != "" && r.URL != nil && r.URL.RawQuery != "" {
		if vs, ok := r.URL.Query()[m.queryParam]; ok {
			// RFC 6750 §2 and §3.1: one method per request, and the
			// parameter once, even with the same token.
			if token != "" || len(vs) != 1 || !b64token(vs[0]) {
				return "", 0, ErrBadCredentials
			}
			token, from = vs[0], from|fromQuery
		}
	}
	if m.extract != nil {
		if t, ok := m.extract(r); ok {
			if from&fromQuery != 0 {
				return "", 0, ErrBadCredentials
			}
			if err := add(t, fromExtractor); err != nil {
				return "", 0, err
			}
		}
	}
	if token == "" {
		return "", 0, ErrNoCredentials
	}
	return token, from, nil
}

// bearerToken parses one Authorization header value. It reports ok=false for
// another scheme, and an error for a Bearer header without a well-formed
// credential. The scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(h string) (token string, ok bool, err error) {
	scheme, rest := bearerScheme(h)
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	rest = strings.TrimLeft(rest, " ")
	if !b64token(rest) {
		return "", false, ErrBadCredentials
	}
	return rest, true, nil
}

// b64token reports whether s is an RFC 6750 §2.1 b64token, the syntax of a
// bearer credential: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=". Every token of this package's format is one; a space, a comma, a
// quote or a byte outside ASCII is not. (A loop over bytes: it runs on the
// hot path, and rejects a long header at its first bad byte.)
func b64token(s string) bool {
	n := len(s)
	for n > 0 && s[n-1] == '=' {
		n--
	}
	if n == 0 {
		return false
	}
	for i := 0; i < n; i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '.' && c != '_' && c != '~' && c != '+' && c != '/' {
			return false
		}
	}
	return true
}

func bearerScheme(h string) (scheme, rest string) {
	scheme, rest, _ = strings.Cut(trimOWS(h), " ")
	return scheme, rest
}

// withoutCredentials returns the request to pass on, r2 (a shallow copy of
// r), without the credentials found in from: the Authorization header's
// Bearer lines, the API-key header, the query parameter (from URL.RawQuery,
// RequestURI and a parsed Form). It never writes to r: the header map and
// the URL are copied (the header values are shared), and only when they
// change.
func (m *Middleware) withoutCredentials(r, r2 *http.Request, from uint8) {
	if from&(fromBearer|fromAPIKey) != 0 {
		h := make(http.Header, len(r.Header))
		for k, vs := range r.Header {
			switch {
			case k == m.apiKeyHeader && from&fromAPIKey != 0:
				continue
			case k == headerAuthorization && from&fromBearer != 0:
				if len(vs) == 1 { // the one line the token came from
					continue
				}
				if vs = otherSchemes(vs); len(vs) == 0 {
					continue
				}
			}
			h[k] = vs
		}
		r2.Header = h
	}
	if from&fromQuery != 0 {
		u := *r.URL
		u.RawQuery = withoutParam(r.URL.RawQuery, m.queryParam)
		u.ForceQuery = false
		r2.URL = &u
		if path, _, ok := strings.Cut(r.RequestURI, "?"); ok {
			r2.RequestURI = path
			if u.RawQuery != "" {
				r2.RequestURI += "?" + u.RawQuery
			}
		}
		if r.Form != nil {
			r2.Form = withoutKey(r.Form, m.queryParam)
		}
	}
}

// otherSchemes returns the Authorization values that are not Bearer (all
// the Bearer ones held the consumed token), sharing vs if none is.
func otherSchemes(vs []string) []string {
	keep := 0
	for _, v := range vs {
		if s, _ := bearerScheme(v); !strings.EqualFold(s, "Bearer") {
			keep++
		}
	}
	if keep == len(vs) {
		return vs
	}
	out := make([]string, 0, keep)
	for _, v := range vs {
		if s, _ := bearerScheme(v); !strings.EqualFold(s, "Bearer") {
			out = append(out, v)
		}
	}
	return out
}

// withoutParam returns the raw query q without the pairs whose key is name,
// keeping the others byte for byte.
func withoutParam(q, name string) string {
	var b strings.Builder
	for pair := range strings.SplitSeq(q, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// withoutKey returns a copy of vs without key (values shared).
func withoutKey(vs url.Values, key string) url.Values {
	out := make(url.Values, len(vs))
	for k, v := range vs {
		if k != key {
			out[k] = v
		}
	}
	return out
}
