package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// parseLifetime reads a lifetime as apitoken.ParseLifetime does ("6
// months", "90 days", "6mo", "90d", "none"), around spaces. The empty
// string and "default" are the policy's default.
func parseLifetime(s string) (apitoken.Lifetime, error) {
	l, err := apitoken.ParseLifetime(strings.TrimSpace(s))
	if err != nil {
		return apitoken.Lifetime{}, fmt.Errorf("%q is not a lifetime (want e.g. \"6 months\", \"90 days\", \"6mo\", \"90d\" or \"none\")", s)
	}
	return l, nil
}

// parseSpan reads a span of time: a lifetime without months ("7 days",
// "7d", "12h", "1h30m").
func parseSpan(s string) (time.Duration, error) {
	l, err := parseLifetime(s)
	if err == nil && l.Expires() && !strings.HasSuffix(l.String(), "mo") {
		return l.ExpiresAt(time.Time{}).Sub(time.Time{}), nil
	}
	return 0, fmt.Errorf("%q is not a span of time (want e.g. \"7 days\", \"7d\", \"12h\"; months vary in length)", s)
}

// parseOwner reads "user:42" or "org:42".
func parseOwner(s string) (apitoken.Owner, error) {
	kind, id, ok := strings.Cut(s, ":")
	var k apitoken.Kind
	if ok && id != "" && k.UnmarshalText([]byte(kind)) == nil {
		return apitoken.Owner{Kind: k, ID: id}, nil
	}
	return apitoken.Owner{}, fmt.Errorf("owner %q: want user:<id> or org:<id>", s)
}

// parseKind reads "user" or "org".
func parseKind(s string) (apitoken.Kind, error) {
	var k apitoken.Kind
	if err := k.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("kind %q: want user or org", s)
	}
	return k, nil
}

// parseGrants reads "api=level" items.
func parseGrants(items []string) (apitoken.Grants, error) {
	g := make(apitoken.Grants, len(items))
	for _, it := range items {
		api, level, _ := strings.Cut(strings.TrimSpace(it), "=")
		var a apitoken.Access
		if err := a.UnmarshalText([]byte(level)); err != nil || api == "" {
			return nil, fmt.Errorf("grant %q: want api=none|read|full (api * for all APIs)", it)
		}
		g[api] = a
	}
	return g, nil
}

// parseIPFilter reads an --ip-filter value: a comma-separated list of CIDR
// prefixes or addresses is an inline filter, anything else the name of one
// of the policy's filters; the empty string is no filter.
func parseIPFilter(s string) (apitoken.IPFilter, []string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return apitoken.IPFilter{}, nil
	}
	items := strings.Split(s, ",")
	var prefixes []netip.Prefix
	for i, it := range items {
		items[i] = strings.TrimSpace(it)
		p, err := apitoken.ParsePrefix(items[i])
		if err != nil {
			if strings.ContainsAny(s, "/:") || len(items) > 1 {
				// It looks like addresses: let the Issuer report the bad one.
				return apitoken.IPFilter{}, items
			}
			return apitoken.IPFilter{Name: s}, nil
		}
		prefixes = append(prefixes, p)
	}
	return apitoken.IPFilter{Prefixes: prefixes}, items
}

// parseHashKeys reads comma- or newline-separated keys, each hex or
// base64 (standard or URL alphabet, padded or not), the current key first.
func parseHashKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		k, err := decodeKey(f)
		if err != nil {
			return nil, fmt.Errorf("hash key %d: %v", i+1, err)
		}
		if len(k) < apitoken.MinHashKeyLen {
			return nil, fmt.Errorf("hash key %d: %d bytes, want at least %d", i+1, len(k), apitoken.MinHashKeyLen)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// decodeKey decodes one key; a string of hex digits is hex. The error never
// repeats the key.
func decodeKey(s string) ([]byte, error) {
	if len(s)%2 == 0 && strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		return hex.DecodeString(s)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("neither hex nor base64")
}

// readHashKeys returns the keys of the file at path, or of env when path is
// empty.
func readHashKeys(path, env string) ([][]byte, error) {
	if path == "" {
		return parseHashKeys(env)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := parseHashKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no hash key in the file", path)
	}
	return keys, nil
}
