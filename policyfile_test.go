package apitoken_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
)

const policyFile = `{
  "prefix": "acme",
  "default_lifetime": "6 months",
  "max_lifetime": "12 months",
  "allowed_lifetimes": ["3 months", "6 months", "12 months"],
  "require_expiry": true,
  "idle_timeout": "90 days",
  "expired_retention": "2 weeks",
  "ip_filters": {"office": ["203.0.113.0/24", "2001:db8::/32"]},
  "allow_inline_ip_filter": true,
  "roles": {
    "observer": {"description": "reads devices", "grants": {"devices": "read"}},
    "admin": {"grants": {"*": "full"}, "rate_limit": {"requests": 100, "per": "1 second", "burst": 200}}
  },
  "default_roles": ["observer"],
  "max_tokens_per_owner": 20,
  "org_rate_limit": {"requests": 60, "per": "1 minute", "burst": 10}
}`

func TestParsePolicy(t *testing.T) {
	p, err := apitoken.ParsePolicy("policy.json", []byte(policyFile))
	require.NoError(t, err)
	want := apitoken.Policy{
		Prefix:              "acme",
		DefaultLifetime:     apitoken.Months(6),
		MaxLifetime:         apitoken.Months(12),
		AllowedLifetimes:    []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)},
		RequireExpiry:       true,
		IdleTimeout:         90 * 24 * time.Hour,
		ExpiredRetention:    14 * 24 * time.Hour,
		IPFilters:           map[string][]string{"office": {"203.0.113.0/24", "2001:db8::/32"}},
		AllowInlineIPFilter: true,
		Roles: map[string]apitoken.Role{
			"observer": {Description: "reads devices", Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"admin": {Grants: apitoken.Grants{"*": apitoken.AccessFull},
				RateLimit: apitoken.Limit{Rate: 100, Burst: 200}},
		},
		DefaultRoles:      []string{"observer"},
		MaxTokensPerOwner: 20,
		OrgRateLimit:      apitoken.Limit{Rate: apitoken.Per(60, time.Minute), Burst: 10},
	}
	assert.Equal(t, want, p)

	p, err = apitoken.ParsePolicy("p.json", []byte(`{"idle_timeout": "none", "default_lifetime": "none"}`))
	require.NoError(t, err)
	assert.Equal(t, apitoken.NoIdleTimeout, p.IdleTimeout)
	assert.Equal(t, apitoken.NoExpiry, p.DefaultLifetime)

	path := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(path, []byte(policyFile), 0o600))
	loaded, err := apitoken.LoadPolicy(path)
	require.NoError(t, err)
	assert.Equal(t, want, loaded)
	_, err = apitoken.LoadPolicy(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	_, err = apitoken.LoadPolicy("examples/server/policy.json")
	assert.NoError(t, err, "the example server's policy file")
}

func TestParsePolicyErrorsSayWhere(t *testing.T) {
	tests := []struct {
		name, file string
		line       int
		field      string
		detail     string
	}{
		{"malformed", "{\n  \"prefix\": \"acme\",\n  oops\n}", 3, "", "malformed JSON"},
		{"not an object", `["acme"]`, 1, "", "want a JSON object"},
		{"unknown field", "{\n  \"prefix\": \"acme\",\n  \"max_lifetme\": \"6 months\"\n}", 3, "max_lifetme", "unknown field"},
		{"wrong type", "{\n  \"require_expiry\": \"yes\"\n}", 2, "require_expiry", "got a JSON string, want true or false"},
		{"wrong nested type", "{\n  \"roles\": 3\n}", 2, "roles", "got a JSON number, want an object"},
		{"bad lifetime", "{\n\n  \"default_lifetime\": \"six months\"\n}", 3, "default_lifetime", `"six months" is not a lifetime`},
		{"months as a duration", "{\"idle_timeout\": \"3 months\"}", 1, "idle_timeout", "months vary in length"},
		{"bad access level", "{\n  \"roles\": {\"x\": {\"grants\": {\"devices\": \"write\"}}}\n}", 2, "roles", "invalid access level"},
		{"unknown role field", "{\n  \"roles\": {\"x\": {\"grant\": {}}}\n}", 2, "roles", "unknown field"},
		{"twice", "{\n  \"prefix\": \"a\",\n  \"prefix\": \"b\"\n}", 3, "prefix", "given twice"},
		{"trailing data", "{\"prefix\": \"a\"}\n{}", 2, "", "data after the policy object"},
		{"rule broken", "{\n  \"max_lifetime\": \"90 days\",\n  \"default_lifetime\": \"6 months\"\n}", 3, "default_lifetime",
			"DefaultLifetime: 6 months breaks MaxLifetime: a lifetime of 6 months exceeds the maximum of 90 days"},
		{"bad filter", "{\n  \"ip_filters\": {\"office\": [\"10.1.2.3/8\"]}\n}", 2, "ip_filters", "has host bits set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apitoken.ParsePolicy("policy.json", []byte(tc.file))
			var fe *apitoken.PolicyFileError
			require.ErrorAs(t, err, &fe)
			assert.ErrorIs(t, err, apitoken.ErrPolicy)
			assert.Equal(t, "policy.json", fe.File)
			assert.Equal(t, tc.line, fe.Line, "line of %v", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Detail, tc.detail)
		})
	}
}

func ExampleParsePolicy() {
	file := []byte(`{
  "prefix": "acme",
  "allowed_lifetimes": ["3 months", "6 months", "12 months"],
  "default_lifetime": "6 months",
  "roles": {"observer": {"grants": {"devices": "read"}}}
}`)
	p, err := apitoken.ParsePolicy("policy.json", file)
	fmt.Println(err, p.Prefix, p.DefaultLifetime, p.AllowedLifetimes)

	_, err = apitoken.ParsePolicy("policy.json", []byte("{\n  \"prefix\": \"acme\",\n  \"default_lifetime\": \"half a year\"\n}"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, apitoken.ErrPolicy))
	// Output:
	// <nil> acme 6mo [3mo 6mo 12mo]
	// apitoken: policy.json:3: default_lifetime: "half a year" is not a lifetime (want e.g. "15 minutes", "90 days", "6 months" or "none")
	// true
}

func TestParseLifetimeInWords(t *testing.T) {
	for s, want := range map[string]apitoken.Lifetime{
		"6 months": apitoken.Months(6), "1 month": apitoken.Months(1), "90 days": apitoken.Days(90),
		"2 weeks": apitoken.Days(14), "1 hour": apitoken.Hours(1), "15 minutes": apitoken.Minutes(15),
		"30 seconds": apitoken.For(30 * time.Second), "6mo": apitoken.Months(6), "none": apitoken.NoExpiry,
	} {
		got, err := apitoken.ParseLifetime(s)
		if assert.NoError(t, err, s) {
			assert.Equal(t, want, got, "ParseLifetime(%q)", s)
		}
	}
	for _, s := range []string{"six months", "0 days", "-1 days", "3 fortnights", "6 months ago"} {
		_, err := apitoken.ParseLifetime(s)
		assert.Error(t, err, "ParseLifetime(%q)", s)
	}
}
