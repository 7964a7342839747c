package apitoken_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"reflect"
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

// FuzzAllowList issues a token whose inline filter is one fuzzed entry and
// validates it from one fuzzed client address (the zero Addr when netip
// cannot read it). Checks:
//   - configuration: Issue accepts the entry exactly when ParsePrefix does
//     (FuzzParsePrefix holds ParsePrefix to net/netip), refusing it with a
//     PolicyError of rule IPPrefixes;
//   - matching, differential against net/netip: the token is allowed
//     exactly when the netip prefix (a single address as /32 or /128, an
//     IPv4-mapped prefix of /96 or longer unmapped) contains the address
//     unmapped and without its zone; an unknown address is denied;
//   - differential against package net, where net reads both strings
//     (net.ParseCIDR, net.ParseIP): the same decision as IPNet.Contains,
//     whose IPv4-mapped addresses are IPv4 addresses too. The documented
//     differences: an entry net reads but ParsePrefix refuses has host
//     bits set or a prefix length netip refuses ("/08"); a single address
//     without a length is an entry here, not for net.ParseCIDR; a zoned
//     address net cannot read is matched here without its zone.
func FuzzAllowList(f *testing.F) {
	for _, c := range [][2]string{
		{"10.0.0.0/8", "10.1.2.3"}, {"10.0.0.0/8", "::ffff:10.1.2.3"}, {"10.0.0.0/8", "11.0.0.1"},
		{"::ffff:10.0.0.0/104", "10.1.2.3"}, {"::ffff:0.0.0.0/96", "192.0.2.1"}, {"::ffff:0:0/95", "::ffff:10.1.2.3"},
		{"::fffe:0:0/95", "10.1.2.3"}, {"2001:db8::/32", "2001:db8::1%eth0"}, {"2001:db8::/32", "2001:db9::1"},
		{"10.1.2.3", "10.1.2.3"}, {"::ffff:10.1.2.3", "10.1.2.3"}, {"010.0.0.1", "10.0.0.1"}, {"0x7f.0.0.1", "127.0.0.1"},
		{"::/129", "::1"}, {"1.2.3", "1.2.3.0"}, {"1.2.3.4/33", "1.2.3.4"}, {"10.1.2.3/8", "10.1.2.3"},
		{"10.0.0.0/08", "10.1.2.3"}, {"0.0.0.0/0", "::ffff:1.2.3.4"}, {"::/0", "1.2.3.4"}, {"fe80::/10", "fe80::1%25eth0"},
		{"10.0.0.0/8", ""}, {"10.0.0.0/8", "::a01:203"},
	} {
		f.Add(c[0], c[1])
	}
	e := newEnv(f, testPolicy())
	f.Fuzz(func(t *testing.T, entry, ip string) {
		ctx := t.Context()
		spec := orgSpec()
		spec.IPPrefixes = []string{entry}
		secret, tok, err := e.iss.Issue(ctx, spec)
		if _, perr := apitoken.ParsePrefix(entry); (err == nil) != (perr == nil) {
			t.Fatalf("Issue with entry %q: %v, but ParsePrefix: %v", entry, err, perr)
		}
		_, nn, nerr := net.ParseCIDR(entry)
		if err != nil {
			var pe *apitoken.PolicyError
			if !errors.As(err, &pe) || pe.Rule != "IPPrefixes" {
				t.Fatalf("Issue with entry %q: %v, want a PolicyError of rule IPPrefixes", entry, err)
			}
			if nerr == nil {
				if q, err := netip.ParsePrefix(entry); err == nil && q.Masked() == q {
					t.Fatalf("entry %q: refused, but net reads %v and netip a masked %v", entry, nn, q)
				}
			}
			return
		}
		defer func() {
			if err := e.iss.Delete(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
		}()

		var want netip.Prefix
		if q, err := netip.ParsePrefix(entry); err == nil {
			want = q
			if q.Addr().Is4In6() && q.Bits() >= 96 {
				want = netip.PrefixFrom(q.Addr().Unmap(), q.Bits()-96)
			}
		} else {
			a := netip.MustParseAddr(entry).Unmap()
			want = netip.PrefixFrom(a, a.BitLen())
		}
		addr, _ := netip.ParseAddr(ip)
		req := apitoken.Request{IP: addr, Org: "org_1", API: "devices", Access: apitoken.AccessRead}
		_, verr := e.v.Validate(ctx, secret.Reveal(), req)
		if verr != nil && !errors.Is(verr, apitoken.ErrIPNotAllowed) {
			t.Fatalf("entry %q, address %q: %v", entry, ip, verr)
		}
		allowed := verr == nil
		if wantAllowed := addr.IsValid() && want.Contains(addr.Unmap().WithZone("")); allowed != wantAllowed {
			t.Fatalf("entry %q (%v), address %q (%v): allowed %v, netip says %v", entry, want, ip, addr, allowed, wantAllowed)
		}
		if nip := net.ParseIP(ip); nerr == nil && nip != nil && nn.Contains(nip) != allowed {
			t.Fatalf("entry %q, address %q: allowed %v, net says %v (%v)", entry, ip, allowed, !allowed, nn)
		}
	})
}

// FuzzPermissionSpec: a token's or a role's permissions, a Grants map, as
// JSON reads it (Access.UnmarshalText for each level). Checks, differential
// against a reference read into map[string]string:
//   - Grants accepts exactly the JSON objects whose every level is
//     "none", "read" or "full" (case-sensitive), and "null" (no map); a
//     JSON null level reads as none — the documented difference, which
//     can only grant less;
//   - what it accepts marshals and reads back equal, and For(api) is the
//     API's own level, else the AllAPIs ("*") level, else none;
//   - a policy with a role of those grants validates exactly when no API
//     name is empty;
//   - Access.UnmarshalText reads exactly "none", "read" and "full", and
//     MarshalText writes them back.
func FuzzPermissionSpec(f *testing.F) {
	for _, s := range []string{
		`{"*":"full","billing":"none"}`, `{"devices":"read"}`, `{}`, `null`, `{"a":null}`, `{"a":"READ"}`,
		`{"":"read"}`, `{"a":1}`, `{"a":"read","a":"full"}`, `{"a":"rea\u0064"}`, `[]`, `{"*":"read",}`, `"full"`,
	} {
		f.Add(s, "billing")
	}
	f.Add(`{"*":"read"}`, "full")
	f.Add(`{"x":"full"}`, "x")
	levels := map[string]apitoken.Access{"none": apitoken.AccessNone, "read": apitoken.AccessRead, "full": apitoken.AccessFull}
	f.Fuzz(func(t *testing.T, data, api string) {
		var a apitoken.Access
		if err := a.UnmarshalText([]byte(api)); err != nil {
			if _, ok := levels[api]; ok {
				t.Fatalf("UnmarshalText(%q) = %v", api, err)
			}
		} else if b, err := a.MarshalText(); err != nil || a != levels[api] || string(b) != api {
			t.Fatalf("UnmarshalText(%q) = %v, which marshals as %q, %v", api, a, b, err)
		}

		var g apitoken.Grants
		err := json.Unmarshal([]byte(data), &g)
		var ref map[string]*string // the last level of each key; nil for null
		refErr := json.Unmarshal([]byte(data), &ref)
		if refErr == nil && !everyLevelValid(data, levels) {
			refErr = errors.New("an invalid level")
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Grants from %q: %v; reference: %v", data, err, refErr)
		}
		if err != nil {
			return
		}
		want := apitoken.Grants(nil)
		if ref != nil {
			want = apitoken.Grants{}
			for k, v := range ref {
				want[k] = levels[deref(v)] // null: none
			}
		}
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("Grants from %q = %v, want %v", data, g, want)
		}
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", g, err)
		}
		var back apitoken.Grants
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, g) {
			t.Fatalf("Grants %v marshal as %s, which reads back as %v, %v", g, b, back, err)
		}
		wantFor, ok := want[api]
		if !ok {
			wantFor = want[apitoken.AllAPIs]
		}
		if got := g.For(api); got != wantFor {
			t.Fatalf("Grants from %q: For(%q) = %v, want %v", data, api, got, wantFor)
		}
		_, empty := g[""]
		perr := apitoken.Policy{Roles: map[string]apitoken.Role{"r": {Grants: g}}}.Validate()
		if (perr == nil) == empty {
			t.Fatalf("a role with grants %v: Validate = %v", g, perr)
		}
	})
}

// everyLevelValid reports whether every value of the JSON object data, a
// repeated key's earlier values included, is null or a key of levels.
func everyLevelValid(data string, levels map[string]apitoken.Access) bool {
	dec := json.NewDecoder(strings.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return true // null, or no object: the reference's own verdict stands
	}
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the key
			return false
		}
		v, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := v.(string); v != nil && (!ok || levels[s] == 0 && s != "none") {
			return false
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}
