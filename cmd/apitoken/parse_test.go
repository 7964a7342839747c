package main

import (
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLifetime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want apitoken.Lifetime
	}{
		{"6 months", apitoken.Months(6)},
		{"1 month", apitoken.Months(1)},
		{"6mo", apitoken.Months(6)},
		{"90 days", apitoken.Days(90)},
		{"90d", apitoken.Days(90)},
		{"2 weeks", apitoken.Days(14)},
		{"12 hours", apitoken.Hours(12)},
		{"15 minutes", apitoken.Minutes(15)},
		{"30 seconds", apitoken.For(30 * time.Second)},
		{"1h30m", apitoken.For(90 * time.Minute)},
		{"none", apitoken.NoExpiry},
		{"", apitoken.Lifetime{}},
		{"default", apitoken.Lifetime{}},
	} {
		got, err := parseLifetime(tc.in)
		require.NoError(t, err, "parseLifetime(%q)", tc.in)
		assert.Equal(t, tc.want, got, "parseLifetime(%q) = %v, want %v", tc.in, got, tc.want)
	}
	for _, in := range []string{"soon", "6 fortnights", "-3 days", "0 days", "1000 years", "6"} {
		_, err := parseLifetime(in)
		assert.Error(t, err, "parseLifetime(%q)", in)
	}
}

func TestParseSpan(t *testing.T) {
	t.Parallel()
	got, err := parseSpan("7 days")
	require.NoError(t, err)
	assert.Equal(t, 7*24*time.Hour, got)
	got, err = parseSpan("12h")
	require.NoError(t, err)
	assert.Equal(t, 12*time.Hour, got)
	for _, in := range []string{"6 months", "6mo", "none", ""} {
		_, err := parseSpan(in)
		assert.Error(t, err, "parseSpan(%q)", in)
	}
}

func TestParseOwner(t *testing.T) {
	t.Parallel()
	o, err := parseOwner("user:42")
	require.NoError(t, err)
	assert.Equal(t, apitoken.UserOwner("42"), o)
	o, err = parseOwner("org:acme")
	require.NoError(t, err)
	assert.Equal(t, apitoken.OrgOwner("acme"), o)
	for _, in := range []string{"42", "user:", "team:1", ""} {
		_, err := parseOwner(in)
		assert.Error(t, err, "parseOwner(%q)", in)
	}
}

func TestParseIPFilter(t *testing.T) {
	t.Parallel()
	f, items := parseIPFilter("office")
	assert.Equal(t, apitoken.IPFilter{Name: "office"}, f)
	assert.Nil(t, items)
	f, items = parseIPFilter("203.0.113.0/24, 2001:db8::1")
	assert.Len(t, f.Prefixes, 2)
	assert.Equal(t, []string{"203.0.113.0/24", "2001:db8::1"}, items)
	f, items = parseIPFilter("10.1.2.3/8") // host bits set: left to the Issuer to refuse
	assert.True(t, f.IsZero())
	assert.Equal(t, []string{"10.1.2.3/8"}, items)
	f, items = parseIPFilter("")
	assert.True(t, f.IsZero())
	assert.Nil(t, items)
}

func TestParseHashKeys(t *testing.T) {
	t.Parallel()
	hexKey := "0707070707070707070707070707070707070707070707070707070707070707"
	b64Key := "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg="
	keys, err := parseHashKeys(hexKey + "," + b64Key + "\n")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, byte(7), keys[0][0])
	assert.Equal(t, byte(8), keys[1][0])
	_, err = parseHashKeys("0707")
	assert.ErrorContains(t, err, "want at least 32")
	_, err = parseHashKeys("not-a-key!")
	assert.ErrorContains(t, err, "neither hex nor base64")
	assert.NotContains(t, err.Error(), "not-a-key", "the error never repeats the key")
}

func TestRedisClient(t *testing.T) {
	t.Parallel()
	c, ns, err := redisClient("redis", "redis://:pw@127.0.0.1:6379/2?prefix=app&dial_timeout=1s")
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "app", ns)
	cc, ns, err := redisClient("redis+cluster", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/?dial_timeout=1s")
	require.NoError(t, err)
	defer cc.Close()
	assert.Equal(t, "apitoken", ns)
	_, _, err = redisClient("redis", "redis://:secretpw@127.0.0.1:6379/2?bogus=1")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secretpw")
}

func TestParseGrants(t *testing.T) {
	t.Parallel()
	g, err := parseGrants([]string{"devices=read", "*=full", "billing=none"})
	require.NoError(t, err)
	assert.Equal(t, apitoken.Grants{"devices": apitoken.AccessRead, "*": apitoken.AccessFull, "billing": apitoken.AccessNone}, g)
	for _, in := range []string{"devices", "devices=write", "=read"} {
		_, err := parseGrants([]string{in})
		assert.Error(t, err, "parseGrants(%q)", in)
	}
}
