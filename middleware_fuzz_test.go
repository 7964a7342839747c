package apitoken_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// FuzzClientIP: any peer and forwarding headers yield a valid, unmapped
// address or the zero Addr, and never a panic; an untrusted peer is always
// the answer whatever the headers say.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.7, 10.0.0.2", `for="[2001:db8::1]:4711";proto=https`, "203.0.113.5")
	f.Add("192.0.2.1:1", "10.0.0.9", "for=unknown", "")
	f.Add("[::ffff:10.0.0.1]:80", ",,, ,", `for=";by=`, "[::1]")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff, fwd, realIP string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", fwd)
		r.Header.Set("X-Real-Ip", realIP)
		got := apitoken.ClientIP(r, trusted...)
		if got.IsValid() && (got.Is4In6() || got.Zone() != "") {
			t.Fatalf("ClientIP = %v: mapped or zoned", got)
		}
		peer := apitoken.ClientIP(r)
		if peer.IsValid() && !trusted[0].Contains(peer) && got != peer {
			t.Fatalf("untrusted peer %v, but ClientIP = %v", peer, got)
		}
	})
}

// FuzzMiddlewareAuthorization: any Authorization and API-key header gives
// 200 only for the real token, and otherwise one of the documented statuses.
func FuzzMiddlewareAuthorization(f *testing.F) {
	store := memstore.New()
	pol := apitoken.Policy{Prefix: "acme"}
	iss, _ := apitoken.NewIssuer(store, pol)
	v, _ := apitoken.NewValidator(store, pol)
	s, _, err := iss.Issue(f.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "o", Name: "n", Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}})
	if err != nil {
		f.Fatal(err)
	}
	tok := s.Reveal()
	h := apitoken.Middleware(v, apitoken.WithAPIKeyHeader(""))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f.Add("Bearer "+tok, "")
	f.Add("bearer  "+tok+" ", tok)
	f.Add("Basic abc", "x y")
	f.Add("Bearer", "")
	f.Fuzz(func(t *testing.T, auth, key string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header["Authorization"] = []string{auth}
		r.Header["X-Api-Key"] = []string{key}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200:
			if !containsToken(auth, tok) && key != tok {
				t.Fatalf("200 for Authorization %q, key %q", auth, key)
			}
		case 400, 401:
		default:
			t.Fatalf("status %d for Authorization %q, key %q", w.Code, auth, key)
		}
	})
}

func containsToken(auth, tok string) bool {
	for i := 0; i+len(tok) <= len(auth); i++ {
		if auth[i:i+len(tok)] == tok {
			return true
		}
	}
	return false
}
