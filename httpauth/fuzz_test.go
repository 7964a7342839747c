package httpauth_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

// fuzzTrusted are the trusted proxies of the fuzz targets; the mapped
// prefix is unmapped by NewClientIPSource.
var fuzzTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("::ffff:172.16.0.0/108"),
}

func inFuzzTrusted(a netip.Addr) bool {
	for _, p := range []netip.Prefix{fuzzTrusted[0], fuzzTrusted[1], netip.MustParsePrefix("172.16.0.0/12")} {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// FuzzClientIP: for any peer and forwarding headers (several lines split
// at "\n"), every source answers an address that is never inside a trusted
// prefix, is canonical (unmapped, no zone, round-trips through netip), is
// the same on a second call, and is the peer whenever the peer is not
// trusted. The peer is read from RemoteAddr here with net/netip
// ([wantPeer]), not by a source: the default source must answer it
// exactly, and every source must answer it for an untrusted peer.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.7, 10.0.0.2", `for="[2001:db8::1]:4711";proto=https`, "203.0.113.5")
	f.Add("192.0.2.1:1", "10.0.0.9", "for=unknown", "")
	f.Add("[::ffff:10.0.0.1]:80", ",,, ,", `for=";by=`, "[::1]")
	f.Add("[fd00::1]:443", "fe80::1%eth0\n::ffff:172.16.0.9", "FOR=192.0.2.1, for=10.1.1.1\nfor=_hidden", "172.20.0.1")
	f.Add("172.16.5.5:1", "198.51.100.7:8080", `for="192.0.2.1:_x";by="a,b", for=10.0.0.1`, "2001:db8::1")
	sources := []*httpauth.ClientIPSource{{}}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		s, err := httpauth.NewClientIPSource(h, fuzzTrusted...)
		if err != nil {
			f.Fatal(err)
		}
		sources = append(sources, s)
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd, realIP string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for name, v := range map[string]string{"X-Forwarded-For": xff, "Forwarded": fwd, "X-Real-Ip": realIP} {
			if v != "" {
				r.Header[name] = strings.Split(v, "\n")
			}
		}
		peer, canonicalForm := wantPeer(remote)
		for _, s := range sources {
			got := s.ClientIP(r)
			if again := s.ClientIP(r); again != got {
				t.Fatalf("%v: %v, then %v", s, got, again)
			}
			if s == sources[0] {
				// The peer only: the address RemoteAddr holds, whenever
				// net/http could have written it; nothing else ever.
				if got.IsValid() && got != peer || canonicalForm && got != peer {
					t.Fatalf("%v: RemoteAddr %q holds %v, but %v", s, remote, peer, got)
				}
			}
			if !got.IsValid() {
				continue
			}
			if got.Is4In6() || got.Zone() != "" {
				t.Fatalf("%v: %v is mapped or zoned", s, got)
			}
			if back, err := netip.ParseAddr(got.String()); err != nil || back != got {
				t.Fatalf("%v: %v does not round-trip: %v, %v", s, got, back, err)
			}
			if s != sources[0] && inFuzzTrusted(got) {
				t.Fatalf("%v: %v is a trusted proxy", s, got)
			}
			if peer.IsValid() && !inFuzzTrusted(peer) && got != peer {
				t.Fatalf("%v: untrusted peer %v, but %v", s, peer, got)
			}
		}
	})
}

// wantPeer reads the peer's address from RemoteAddr with net/netip alone:
// "ip:port", "[ip6]:port", or an address without a port (bracketed if
// IPv6), unmapped and without its zone; the zero Addr for anything else,
// and for more than 64 bytes. canonicalForm reports whether remote is
// exactly as net/http writes a connection's address (AddrPort.String).
func wantPeer(remote string) (peer netip.Addr, canonicalForm bool) {
	if remote == "" || len(remote) > 64 {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), ap.String() == remote
	}
	s, bracketed := strings.CutPrefix(remote, "[")
	if bracketed {
		var ok bool
		if s, ok = strings.CutSuffix(s, "]"); !ok {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || bracketed && !a.Is6() {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), false
}

// FuzzForwarded drives the Forwarded parser through a trusted peer: any
// header line gives a canonical untrusted address or none; a valid answer
// comes from a line with a for= parameter; and appending a trusted hop, on
// the same line or a line of its own, never changes the answer.
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		`for=192.0.2.60;proto=http;by=203.0.113.43`,
		`for="[2001:db8:cafe::17]:4711", for=10.0.0.1`,
		`FOR=198.51.100.7`, `for="198.51.100.7`, `for=unknown`, `for=_hidden`, `for="_gazonk"`,
		`for="\"";by=x`, `;for=192.0.2.1;;`, `for=192.0.2.1;for=192.0.2.2`, `by="a,b";for=192.0.2.1`,
		`for="[::ffff:198.51.100.7]:80"`, `for="[fe80::1%25eth0]"`, ` , for=192.0.2.1 ,`,
	} {
		f.Add(s)
	}
	src, err := httpauth.NewClientIPSource("Forwarded", fuzzTrusted...)
	if err != nil {
		f.Fatal(err)
	}
	ip := func(lines ...string) netip.Addr {
		return src.ClientIP(&http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{"Forwarded": lines}})
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := ip(line)
		if got.IsValid() {
			if got.Is4In6() || got.Zone() != "" || inFuzzTrusted(got) {
				t.Fatalf("%q: %v is mapped, zoned or trusted", line, got)
			}
			if !strings.Contains(strings.ToLower(line), "for=") {
				t.Fatalf("%q: %v without a for= parameter", line, got)
			}
		}
		if strings.Count(line, ",") >= 60 {
			return // a walk reads the last 64 elements of a line
		}
		if again := ip(line + ", for=10.9.9.9"); again != got {
			t.Fatalf("%q: %v, but %v with a trusted hop appended", line, got, again)
		}
		if again := ip(line, "for=10.9.9.9"); again != got {
			t.Fatalf("%q: %v, but %v with a trusted hop's line", line, got, again)
		}
	})
}

// FuzzMiddlewareAuthorization: any Authorization and API-key header gives
// 200 only for the real token, and otherwise one of the documented statuses.
func FuzzMiddlewareAuthorization(f *testing.F) {
	store := memstore.New()
	pol := apitoken.Policy{Prefix: "acme"}
	iss, _ := apitoken.NewIssuer(store, pol)
	v, _ := newValidator(f, store, pol, apitoken.WithSingleTenant("o"))
	s, _, err := iss.Issue(f.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "o", Name: "n", Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}})
	if err != nil {
		f.Fatal(err)
	}
	tok := s.Reveal()
	auth, err := httpauth.New(v, httpauth.WithAPIKeyHeader(""), httpauth.WithAPIName("x"), httpauth.WithFailureLimit(apitoken.Limit{}))
	if err != nil {
		f.Fatal(err)
	}
	h := auth.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		for _, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, tok) {
					panic("the handler sees the token")
				}
			}
		}
	}))
	f.Add("Bearer "+tok, "")
	f.Add("bearer  "+tok+" ", tok)
	f.Add("Basic abc", "x y")
	f.Add("Bearer", "")
	f.Fuzz(func(t *testing.T, authz, key string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header["Authorization"] = []string{authz}
		r.Header["X-Api-Key"] = []string{key}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200:
			if !strings.Contains(authz, tok) && key != tok {
				t.Fatalf("200 for Authorization %q, key %q", authz, key)
			}
		case 400, 401:
		default:
			t.Fatalf("status %d for Authorization %q, key %q", w.Code, authz, key)
		}
	})
}
