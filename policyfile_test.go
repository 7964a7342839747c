package apitoken_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// fullPolicy sets every field of a Policy and of a Role: a field added
// later fails TestPolicyFileRoundTrip until it is set here, and then until
// the file form carries it.
func fullPolicy() apitoken.Policy {
	return apitoken.Policy{
		Prefix:              "acme",
		DefaultLifetime:     apitoken.Months(6),
		MaxLifetime:         apitoken.Months(12),
		AllowedLifetimes:    []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Days(90), apitoken.Months(12)},
		RequireExpiry:       true,
		IdleTimeout:         30 * 24 * time.Hour,
		ExpiredRetention:    36 * time.Hour,
		RequireIPFilter:     true,
		IPFilters:           map[string][]string{"office": {"203.0.113.0/24", "2001:db8::/32"}, "vpn": {"198.51.100.7"}},
		AllowInlineIPFilter: true,
		Roles: map[string]apitoken.Role{
			"observer": {Description: "reads devices", Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"admin": {Description: "everything", Grants: apitoken.Grants{"*": apitoken.AccessFull}, Includes: []string{"observer"},
				RateLimit: apitoken.Limit{Rate: apitoken.Per(100, time.Second), Burst: 200}},
		},
		DefaultRoles:      []string{"observer"},
		MaxTokensPerOwner: 20,
		OrgRateLimit:      apitoken.Limit{Rate: apitoken.Per(60, time.Minute), Burst: 10},
		UserRateLimit:     apitoken.Limit{Rate: apitoken.Per(7, 90*time.Second), Burst: 3},
		MaxRateLimit:      apitoken.Limit{Rate: apitoken.Per(100, time.Second), Burst: 200},
		AllowNoRateLimit:  true,
		MaxGrace:          90 * time.Minute,
	}
}

// roundTrip writes p with MarshalJSON (indented, as a host writes the
// file), reads it with ParsePolicy and requires the same policy back.
func roundTrip(t *testing.T, p apitoken.Policy) []byte {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	require.NoError(t, err, "MarshalJSON(%+v)", p)
	back, err := apitoken.ParsePolicy("generated.json", b)
	require.NoError(t, err, "ParsePolicy of MarshalJSON's output:\n%s", b)
	require.Equal(t, p, back, "ParsePolicy(MarshalJSON(p)):\n%s", b)
	require.True(t, reflect.DeepEqual(p, back), "nil and empty differ:\n%s", b)
	var dec apitoken.Policy
	require.NoError(t, json.Unmarshal(b, &dec))
	require.Equal(t, p, dec, "json.Unmarshal(MarshalJSON(p))")
	assert.Equal(t, p.ID(), back.ID())
	return b
}

func TestPolicyFileRoundTrip(t *testing.T) {
	full := fullPolicy()
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		assert.False(t, v.Field(i).IsZero(), "fullPolicy sets no %s: set it, so the file form is checked for it", v.Type().Field(i).Name)
	}
	role := reflect.ValueOf(full.Roles["admin"])
	for i := range role.NumField() {
		assert.False(t, role.Field(i).IsZero(), "fullPolicy's admin role sets no %s", role.Type().Field(i).Name)
	}

	parsed, err := apitoken.ParsePolicy("policy.json", []byte(policyFile))
	require.NoError(t, err)
	server, err := apitoken.LoadPolicy("examples/server/policy.json")
	require.NoError(t, err)
	for name, p := range map[string]apitoken.Policy{
		"zero":                   {},
		"full":                   full,
		"the documented example": parsed,
		"the example server's":   server,
		"empty, not nil": {
			AllowedLifetimes: []apitoken.Lifetime{}, IPFilters: map[string][]string{}, DefaultRoles: []string{},
			Roles: map[string]apitoken.Role{"r": {Grants: apitoken.Grants{}, Includes: []string{}}, "s": {}},
		},
		"no expiry, no idle timeout": {DefaultLifetime: apitoken.NoExpiry, IdleTimeout: apitoken.NoIdleTimeout},
		"exact durations": {DefaultLifetime: apitoken.For(36*time.Hour + 30*time.Minute), AllowedLifetimes: []apitoken.Lifetime{
			apitoken.For(36*time.Hour + 30*time.Minute), apitoken.For(24 * time.Hour), apitoken.For(90 * time.Second), apitoken.Hours(24), apitoken.Days(1),
		}, IdleTimeout: 1500 * time.Millisecond, ExpiredRetention: time.Nanosecond, MaxGrace: 61 * time.Second},
	} {
		t.Run(name, func(t *testing.T) { roundTrip(t, p) })
	}
}

// TestPolicyFileOutput pins the form: what an operator reads in the
// generated file.
func TestPolicyFileOutput(t *testing.T) {
	b := roundTrip(t, fullPolicy())
	assert.Equal(t, `{
  "prefix": "acme",
  "default_lifetime": "6 months",
  "max_lifetime": "12 months",
  "allowed_lifetimes": [
    "3 months",
    "6 months",
    "90 days",
    "12 months"
  ],
  "require_expiry": true,
  "idle_timeout": "30 days",
  "expired_retention": "36 hours",
  "require_ip_filter": true,
  "ip_filters": {
    "office": [
      "203.0.113.0/24",
      "2001:db8::/32"
    ],
    "vpn": [
      "198.51.100.7"
    ]
  },
  "allow_inline_ip_filter": true,
  "roles": {
    "admin": {
      "description": "everything",
      "grants": {
        "*": "full"
      },
      "includes": [
        "observer"
      ],
      "rate_limit": {
        "requests": 100,
        "per": "1 second",
        "burst": 200
      }
    },
    "observer": {
      "description": "reads devices",
      "grants": {
        "devices": "read"
      }
    }
  },
  "default_roles": [
    "observer"
  ],
  "max_tokens_per_owner": 20,
  "org_rate_limit": {
    "requests": 1,
    "per": "1 second",
    "burst": 10
  },
  "user_rate_limit": {
    "requests": 280,
    "per": "1 hour",
    "burst": 3
  },
  "max_rate_limit": {
    "requests": 100,
    "per": "1 second",
    "burst": 200
  },
  "allow_no_rate_limit": true,
  "max_grace": "90 minutes"
}`, string(b))
	b, err := json.Marshal(apitoken.Policy{})
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(b), "the zero Policy")
}

// TestPolicyFileRoundTripRandom: random valid policies, with rates of whole
// requests per random periods, read back equal.
func TestPolicyFileRoundTripRandom(t *testing.T) {
	lifetimes := []func(n int) apitoken.Lifetime{apitoken.Minutes, apitoken.Hours, apitoken.Days, apitoken.Months,
		func(n int) apitoken.Lifetime { return apitoken.For(time.Duration(n) * 1234567 * time.Microsecond) }}
	periods := []time.Duration{time.Millisecond, 250 * time.Millisecond, time.Second, 7 * time.Second, time.Minute, 90 * time.Second,
		time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 365 * 24 * time.Hour}
	checked := 0
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 20))
		life := func() apitoken.Lifetime { return lifetimes[r.IntN(len(lifetimes))](1 + r.IntN(36)) }
		limit := func() apitoken.Limit {
			if r.IntN(3) == 0 {
				return apitoken.Limit{}
			}
			return apitoken.Limit{Rate: apitoken.Per(1+r.IntN(1_000_000), periods[r.IntN(len(periods))]), Burst: 1 + r.IntN(1000)}
		}
		span := func() time.Duration {
			return time.Duration(1+r.Int64N(int64(apitoken.MaxLifetimeSpan/time.Millisecond))) * time.Millisecond >> r.IntN(40)
		}
		p := apitoken.Policy{Prefix: []string{"", "acme", "t0k_x"}[r.IntN(3)], RequireExpiry: r.IntN(2) == 0,
			MaxTokensPerOwner: r.IntN(3), OrgRateLimit: limit(), UserRateLimit: limit(), MaxRateLimit: limit(),
			AllowNoRateLimit: r.IntN(2) == 0, AllowInlineIPFilter: true}
		if r.IntN(2) == 0 {
			p.DefaultLifetime = life()
		}
		for range r.IntN(4) {
			p.AllowedLifetimes = append(p.AllowedLifetimes, life())
		}
		if r.IntN(2) == 0 {
			p.IdleTimeout = span()
		}
		if r.IntN(2) == 0 {
			p.ExpiredRetention = span()
		}
		if r.IntN(2) == 0 {
			p.MaxGrace = span()
		}
		if n := r.IntN(4); n > 0 {
			p.Roles = map[string]apitoken.Role{}
			for i := range n {
				p.Roles[fmt.Sprint("r", i)] = apitoken.Role{Grants: apitoken.Grants{"api": apitoken.Access(r.IntN(3))}, RateLimit: limit()}
			}
		}
		if p.Validate() != nil {
			continue
		}
		checked++
		t.Run(fmt.Sprint(seed), func(t *testing.T) { roundTrip(t, p) })
	}
	t.Logf("%d valid random policies of 2000", checked)
	assert.Greater(t, checked, 200)
}

func TestPolicyMarshalJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    apitoken.Policy
		want string
	}{
		{"invalid policy", apitoken.Policy{Prefix: "Acme"}, "apitoken: policy: Prefix: want 1 to 16 of [a-z0-9_], starting with a letter, not ending with '_'"},
		{"π per second is 245850922 per 78256779 seconds", apitoken.Policy{OrgRateLimit: apitoken.Limit{Rate: math.Pi, Burst: 1}}, ""},
		{"huge rate", apitoken.Policy{OrgRateLimit: apitoken.Limit{Rate: 1e300, Burst: 1}},
			"apitoken: policy file: org_rate_limit: a rate of 1e+300/s is no whole number of requests per duration"},
		{"tiny rate", apitoken.Policy{Roles: map[string]apitoken.Role{"r": {RateLimit: apitoken.Limit{Rate: 1e-12, Burst: 1}}}},
			"apitoken: policy file: roles.r.rate_limit: a rate of 1e-12/s is no whole number of requests per duration"},
		{"long idle timeout", apitoken.Policy{IdleTimeout: 200 * 365 * 24 * time.Hour},
			"apitoken: policy file: idle_timeout: 1752000h0m0s cannot be written (a policy file holds durations from 1ns to 100 years)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				roundTrip(t, tc.p)
				return
			}
			_, err := tc.p.MarshalJSON()
			assert.EqualError(t, err, tc.want)
			_, err = json.Marshal(tc.p)
			assert.ErrorContains(t, err, tc.want, "json.Marshal")
		})
	}
}

// TestPolicyInHostConfig: a Policy inside a host's JSON configuration is
// written and read in the file's form; null leaves it as it is.
func TestPolicyInHostConfig(t *testing.T) {
	type config struct {
		Listen string           `json:"listen"`
		Policy apitoken.Policy  `json:"policy"`
		Other  *apitoken.Policy `json:"other"`
	}
	in := config{Listen: ":8080", Policy: fullPolicy()}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"policy":{"prefix":"acme","default_lifetime":"6 months",`)
	var out config
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in, out)

	out = config{Policy: apitoken.Policy{Prefix: "keep"}}
	require.NoError(t, json.Unmarshal([]byte(`{"policy": null}`), &out))
	assert.Equal(t, "keep", out.Policy.Prefix)

	err = json.Unmarshal([]byte(`{"policy": {"prefix": "acme", "max_lifetme": "6 months"}}`), &out)
	var fe *apitoken.PolicyFileError
	require.ErrorAs(t, err, &fe)
	assert.EqualError(t, err, "apitoken: policy:1: max_lifetme: unknown field")
}

// FuzzPolicyFileRoundTrip: whatever policy file ParsePolicy reads,
// MarshalJSON writes one it reads back equal, or fails naming a rate it
// cannot write.
func FuzzPolicyFileRoundTrip(f *testing.F) {
	f.Add([]byte(policyFile))
	if b, err := os.ReadFile("examples/server/policy.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"org_rate_limit": {"requests": 3, "per": "7ns", "burst": 1}, "idle_timeout": "1.5s"}`))
	f.Add([]byte(`{"user_rate_limit": {"requests": 1000000, "per": "36500 days", "burst": 9}, "max_grace": "61 minutes"}`))
	f.Add([]byte(`{"roles": {"a": {"includes": ["b"]}, "b": {"grants": {}}}, "allowed_lifetimes": [], "default_roles": []}`))
	f.Fuzz(func(t *testing.T, file []byte) {
		p, err := apitoken.ParsePolicy("fuzz.json", file)
		if err != nil {
			return
		}
		b, err := p.MarshalJSON()
		if err != nil {
			if !strings.Contains(err.Error(), "is no whole number of requests per duration") {
				t.Fatalf("MarshalJSON(ParsePolicy(%q)) error = %v", file, err)
			}
			return
		}
		back, err := apitoken.ParsePolicy("generated.json", b)
		if err != nil {
			t.Fatalf("ParsePolicy(MarshalJSON(ParsePolicy(%q))) = %s, error %v", file, b, err)
		}
		if !reflect.DeepEqual(p, back) {
			t.Fatalf("ParsePolicy(MarshalJSON(p)) = %+v, want %+v (file %q, written %s)", back, p, file, b)
		}
	})
}

func TestPolicyFileRates(t *testing.T) {
	for _, tc := range []struct {
		rate apitoken.Rate
		want string
	}{
		{apitoken.Per(60, time.Minute), `{"requests":1,"per":"1 second","burst":1}`},
		{apitoken.Per(10, time.Minute), `{"requests":10,"per":"1 minute","burst":1}`},
		{apitoken.Per(7, 90*time.Second), `{"requests":280,"per":"1 hour","burst":1}`},
		{apitoken.Per(1, 7*time.Second), `{"requests":1,"per":"7 seconds","burst":1}`},
		{apitoken.Per(1, 1500*time.Millisecond), `{"requests":40,"per":"1 minute","burst":1}`},
		{apitoken.Per(3, 7*time.Nanosecond), `{"requests":3000000000,"per":"7 seconds","burst":1}`},
		{apitoken.Per(5, 365*24*time.Hour), `{"requests":1,"per":"73 days","burst":1}`},
		{apitoken.Per(1, 1500*time.Microsecond), `{"requests":40000,"per":"1 minute","burst":1}`},
	} {
		p := apitoken.Policy{OrgRateLimit: apitoken.Limit{Rate: tc.rate, Burst: 1}}
		b := roundTrip(t, p)
		var f struct {
			OrgRateLimit json.RawMessage `json:"org_rate_limit"`
		}
		require.NoError(t, json.Unmarshal(b, &f))
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, f.OrgRateLimit))
		assert.Equal(t, tc.want, compact.String(), "the file form of %v/s", float64(tc.rate))
	}
}
