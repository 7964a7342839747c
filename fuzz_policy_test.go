package apitoken_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/apitoken/apitoken"
)

// FuzzParsePrefix checks ParsePrefix against net/netip. The documented
// differences: a single address is accepted (as a /32 or /128), host bits
// and zones are refused, and an IPv4-mapped IPv6 prefix of /96 or longer is
// unmapped to IPv4.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3/8", "10.1.2.3", "2001:db8::/32", "2001:db8::1",
		"::ffff:10.0.0.0/104", "::ffff:192.0.2.1", "fe80::1%eth0", "0.0.0.0/0", "::/0", "10.0.0.0/33", "", "/", "1.2.3.4/", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := apitoken.ParsePrefix(s)
		if err != nil {
			if !strings.Contains(err.Error(), "apitoken:") || strings.Count(err.Error(), "apitoken:") != 1 {
				t.Fatalf("ParsePrefix(%q) error %q: want one package prefix", s, err)
			}
			// Refused: netip must refuse it too, or it is a documented difference.
			if strings.Contains(s, "/") {
				if q, err := netip.ParsePrefix(s); err == nil && q.Masked() == q && q.Addr().Zone() == "" {
					t.Fatalf("ParsePrefix(%q) = %v, but netip accepts the masked prefix %v", s, err, q)
				}
			} else if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
				t.Fatalf("ParsePrefix(%q) refused the address netip reads as %v", s, a)
			}
			return
		}
		if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v: want a valid, masked prefix without a zone", s, p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("ParsePrefix(%q) = %v: an IPv4-mapped prefix must be unmapped", s, p)
		}
		again, err := apitoken.ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, which reads back as %v, %v", s, p, again, err)
		}
		var want netip.Prefix
		if strings.Contains(s, "/") {
			q, err := netip.ParsePrefix(s)
			if err != nil {
				t.Fatalf("ParsePrefix(%q) = %v, netip refuses it: %v", s, p, err)
			}
			want = q
			if q.Addr().Is4In6() && q.Bits() >= 96 {
				want = netip.PrefixFrom(q.Addr().Unmap(), q.Bits()-96)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				t.Fatalf("ParsePrefix(%q) = %v, netip refuses the address: %v", s, p, err)
			}
			a = a.Unmap()
			want = netip.PrefixFrom(a, a.BitLen())
		}
		if p != want {
			t.Fatalf("ParsePrefix(%q) = %v, netip says %v", s, p, want)
		}
	})
}

// FuzzParsePolicy: a policy file never panics the loader; what it accepts
// is a valid Policy, and what it refuses is a PolicyFileError pointing at a
// line of the file.
func FuzzParsePolicy(f *testing.F) {
	f.Add(policyFile)
	for _, s := range []string{`{}`, `{"prefix": "acme"}`, `{"roles": {"a": {"grants": {"x": "read"}}}}`,
		`{"idle_timeout": "none"}`, `{"default_lifetime": "6 months", "max_lifetime": "90 days"}`,
		"{\n\"prefix\": 3\n}", `{"org_rate_limit": {"requests": 1, "per": "1 second", "burst": 1}}`, `[`, ``, `{"a":1}{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		p, err := apitoken.ParsePolicy("p.json", []byte(data))
		if err == nil {
			if err := p.Validate(); err != nil {
				t.Fatalf("ParsePolicy accepted a policy that Validate refuses: %v", err)
			}
			return
		}
		var fe *apitoken.PolicyFileError
		if !errors.As(err, &fe) || !errors.Is(err, apitoken.ErrPolicy) {
			t.Fatalf("ParsePolicy error %T %v: want a *PolicyFileError", err, err)
		}
		if lines := strings.Count(data, "\n") + 1; fe.Line < 0 || fe.Line > lines {
			t.Fatalf("ParsePolicy error at line %d of a %d-line file: %v", fe.Line, lines, err)
		}
	})
}
