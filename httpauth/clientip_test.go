package httpauth_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/httpauth"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var trusted = []netip.Prefix{mustPrefix("10.0.0.0/8"), mustPrefix("fd00::/8")}

func source(t testing.TB, header string) *httpauth.ClientIPSource {
	t.Helper()
	if header == "" {
		return &httpauth.ClientIPSource{}
	}
	s, err := httpauth.NewClientIPSource(header, trusted...)
	require.NoError(t, err)
	return s
}

func TestClientIP(t *testing.T) {
	const (
		xff  = "X-Forwarded-For"
		fwd  = "Forwarded"
		real = "X-Real-IP"
		cf   = "CF-Connecting-IP"
		none = ""
	)
	tests := []struct {
		name   string
		source string
		remote string
		header map[string][]string
		want   string
	}{
		{"peer", none, "192.0.2.1:1234", nil, "192.0.2.1"},
		{"peer without port", none, "192.0.2.1", nil, "192.0.2.1"},
		{"peer only: headers never read", none, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "10.0.0.1"},
		{"spoofed XFF from untrusted peer", xff, "192.0.2.1:1234", map[string][]string{"X-Forwarded-For": {"10.9.9.9"}}, "192.0.2.1"},
		{"spoofed X-Real-IP from untrusted peer", real, "192.0.2.1:1234", map[string][]string{"X-Real-Ip": {"10.9.9.9"}}, "192.0.2.1"},
		{"trusted proxy, XFF", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"right-most untrusted", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7, 10.0.0.2"}}, "198.51.100.7"},
		{"several XFF lines are one list", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.7, 10.0.0.2"}}, "198.51.100.7"},
		{"empty XFF elements skipped", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7, ,10.0.0.2,"}}, "198.51.100.7"},
		{"XFF with ports", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7:4711, [2001:db8::9]:80"}}, "2001:db8::9"},
		{"all trusted: unknown", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"10.0.0.3, 10.0.0.2"}}, "invalid IP"},
		{"XFF missing: unknown", xff, "10.0.0.1:80", nil, "invalid IP"},
		{"garbage behind trusted: unknown", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"198.51.100.7, nonsense"}}, "invalid IP"},
		{"garbage left of the client is never reached", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"nonsense, 198.51.100.7"}}, "198.51.100.7"},
		{"half-bracketed XFF", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"[2001:db8::1"}}, "invalid IP"},
		{"Forwarded", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded FOR= is for=", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`FOR=192.0.2.60`}}, "192.0.2.60"},
		{"Forwarded quoted IPv4 with port", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for="192.0.2.60:8080"`}}, "192.0.2.60"},
		{"Forwarded obfuscated port", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for="[2001:db8::1]:_p1"`}}, "2001:db8::1"},
		{"Forwarded lines are one list", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=192.0.2.60", "for=10.0.0.7"}}, "192.0.2.60"},
		{"Forwarded quoted comma", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for=192.0.2.60;ext="a,for=10.0.0.9"`}}, "192.0.2.60"},
		{"Forwarded unknown", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=unknown"}}, "invalid IP"},
		{"Forwarded obfuscated", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=_hidden"}}, "invalid IP"},
		{"Forwarded unterminated quote", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for="192.0.2.60`}}, "invalid IP"},
		{"Forwarded without for", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"by=192.0.2.60;proto=https"}}, "invalid IP"},
		{"Forwarded for twice", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=192.0.2.60;for=192.0.2.61"}}, "invalid IP"},
		{"Forwarded unquoted IPv6", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=[2001:db8::1]"}}, "invalid IP"},
		{"Forwarded port only", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for=":80"`}}, "invalid IP"},
		{"Forwarded garbage", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=192.0.2.60 x"}}, "invalid IP"},
		{"Forwarded escape in for", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {`for="192.0.2.6\0"`}}, "invalid IP"},
		{"Forwarded source ignores XFF", fwd, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-For": {"198.51.100.7"}}, "192.0.2.60"},
		{"XFF source ignores Forwarded", xff, "10.0.0.1:80", map[string][]string{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"X-Real-IP", real, "10.0.0.1:80", map[string][]string{"X-Real-Ip": {"198.51.100.7"}}, "198.51.100.7"},
		{"X-Real-IP source ignores XFF", real, "10.0.0.1:80", map[string][]string{"X-Real-Ip": {"198.51.100.7"}, "X-Forwarded-For": {"192.0.2.60"}}, "198.51.100.7"},
		{"two X-Real-IP lines: unknown", real, "10.0.0.1:80", map[string][]string{"X-Real-Ip": {"192.0.2.60", "198.51.100.7"}}, "invalid IP"},
		{"X-Real-IP trusted: unknown", real, "10.0.0.1:80", map[string][]string{"X-Real-Ip": {"10.0.0.2"}}, "invalid IP"},
		{"custom single-IP header", cf, "10.0.0.1:80", map[string][]string{"Cf-Connecting-Ip": {"2001:db8::5"}}, "2001:db8::5"},
		{"mapped peer and entry", xff, "[::ffff:10.0.0.1]:80", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"zoned entry", xff, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "fe80::1"},
		{"IPv6 trusted proxy", xff, "[fd00::1]:80", map[string][]string{"X-Forwarded-For": {"2001:db8::5"}}, "2001:db8::5"},
		{"unparseable peer", xff, "pipe", nil, "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, vs := range tc.header {
				r.Header[k] = vs
			}
			s := source(t, tc.source)
			assert.Equal(t, tc.want, s.ClientIP(r).String())
		})
	}
}

func TestClientIPSourceAllocs(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:80"
	r.Header["X-Forwarded-For"] = []string{"198.51.100.7, 10.0.0.2"}
	r.Header["Forwarded"] = []string{`for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`}
	for _, h := range []string{"", "X-Forwarded-For", "Forwarded"} {
		s := source(t, h)
		assert.Zero(t, testing.AllocsPerRun(100, func() { s.ClientIP(r) }), "source %q", h)
	}
}

func TestClientIPSourceString(t *testing.T) {
	assert.Equal(t, "peer", (&httpauth.ClientIPSource{}).String())
	s, err := httpauth.NewClientIPSource("x-forwarded-for", mustPrefix("::ffff:10.0.0.0/104"))
	require.NoError(t, err)
	assert.Equal(t, "X-Forwarded-For from [10.0.0.0/8]", s.String(), "header canonical, mapped prefix unmapped")
	r := &http.Request{RemoteAddr: "10.1.1.1:1", Header: http.Header{"X-Forwarded-For": {"192.0.2.1"}}}
	assert.Equal(t, "192.0.2.1", s.ClientIP(r).String())
}

// A Forwarded line of many elements is read from its right end; a walk
// through more trusted hops than it keeps ends unknown.
func TestClientIPLongForwarded(t *testing.T) {
	s := source(t, "Forwarded")
	many := func(n int, last string) string {
		return strings.Repeat("for=10.0.0.5, ", n) + last
	}
	r := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{}}
	r.Header["Forwarded"] = []string{many(500, "for=192.0.2.1")}
	assert.Equal(t, "192.0.2.1", s.ClientIP(r).String())
	r.Header["Forwarded"] = []string{"for=192.0.2.1, " + many(62, "for=10.0.0.6")}
	assert.Equal(t, "192.0.2.1", s.ClientIP(r).String(), "64 elements")
	r.Header["Forwarded"] = []string{"for=192.0.2.1, " + many(63, "for=10.0.0.6")}
	assert.Equal(t, "invalid IP", s.ClientIP(r).String(), "65 elements, all but the first trusted")
	assert.Zero(t, testing.AllocsPerRun(10, func() { s.ClientIP(r) }))
}
