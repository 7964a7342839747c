package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile is what a manager could have stored before the library refused
// such values at issue time, or what a store edited by hand may hold: a
// metadata value that moves the cursor up a line, clears it and writes a
// false status (the attack on show), an OSC sequence that retitles the
// terminal, a right-to-left override, a C1 CSI, a line separator and
// bytes that are not UTF-8.
const (
	rewrite   = "\x1b[1A\x1b[2K\rstatus: revoked"
	osc       = "\x1b]0;owned\x07"
	rtlo      = "invoice\u202egpj.exe"
	isolate   = "a\u2066b\u2069"
	c1CSI     = "x\u009b31m"
	lineSep   = "one\u2028two"
	notUTF8   = "bad\xff\xfe"
	backspace = "pass\bword"
)

// hostileToken writes a token whose every printed field is hostile
// straight to the SQLite store at path, as no Issuer would.
func hostileToken(t *testing.T, path string) *apitoken.Token {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate())
	require.NoError(t, err)
	defer s.Close(context.Background())
	var h apitoken.Hash
	rand.Read(h[:])
	now := time.Now().UTC().Truncate(time.Second)
	tok := &apitoken.Token{
		ID:          "0192f000-0000-7000-8000-00000000e5c0",
		Kind:        apitoken.KindOrg,
		OwnerID:     "acme" + osc,
		OrgID:       "acme" + osc,
		Name:        "ci" + rewrite,
		Description: rtlo + isolate + notUTF8,
		Roles:       []string{"observer" + c1CSI},
		Grants:      apitoken.Grants{"devices" + backspace: apitoken.AccessRead},
		Resources:   []string{"site" + lineSep},
		IPFilter:    apitoken.IPFilter{Name: "office\t\n"},
		Metadata:    map[string]string{"note": rewrite + osc, "key" + osc: "v"},
		Hint:        "tok_ab" + osc + "…cd",
		Hash:        h,
		CreatedAt:   now,
		CreatedBy:   "cli:" + rewrite,
		IssuedAt:    now,
		UpdatedAt:   now,
		ExpiresAt:   now.Add(24 * time.Hour),
		Version:     1,
	}
	require.NoError(t, s.Create(t.Context(), tok, 0))
	return tok
}

// wantPrintable fails the test if out holds a byte or rune a terminal could
// act on: a control character but the newline, a C1 control, a
// bidirectional override or isolate, a line or paragraph separator, or
// bytes that are not UTF-8.
func wantPrintable(t *testing.T, what, out string) {
	t.Helper()
	assert.True(t, utf8.ValidString(out), "%s is not UTF-8: %q", what, out)
	for i, r := range out {
		bad := r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f ||
			r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x2028 || r == 0x2029
		if bad {
			t.Errorf("%s holds %U at byte %d: %q", what, r, i, out)
			return
		}
	}
}

// TestHostileValuesAreEscaped is the attack of issue 20: a metadata value
// holding ESC[1A ESC[2K \r "status: revoked" and an OSC title sequence
// rewrote the operator's `apitoken show`. Every field the CLI prints comes
// out escaped, in the table, in show and in JSON, whatever the store holds.
func TestHostileValuesAreEscaped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	tok := hostileToken(t, path)
	env := []string{"APITOKEN_STORE=sqlite:" + path}

	show := ok(t, dir, env, "show", tok.ID)
	wantPrintable(t, "show", show.stdout)
	fields := map[string]string{}
	for line := range strings.Lines(show.stdout) {
		k, v, _ := strings.Cut(line, ":")
		_, dup := fields[k]
		assert.False(t, dup, "show prints %q twice", k)
		fields[k] = strings.TrimSpace(v)
	}
	for k, v := range map[string]string{
		"name":                       `ci\x1b[1A\x1b[2K\rstatus: revoked`,
		"description":                `invoice\u202egpj.exea\u2066b\u2069bad\xff\xfe`,
		"owner":                      `org:acme\x1b]0;owned\a`,
		"org":                        `acme\x1b]0;owned\a`,
		"roles":                      `observerx\u009b31m`,
		"grants":                     `devicespass\bword=read`,
		"resources":                  `siteone\u2028two`,
		"ip filter":                  `office\t\n`,
		"metadata note":              `\x1b[1A\x1b[2K\rstatus: revoked\x1b]0;owned\a`,
		`metadata key\x1b]0;owned\a`: "v",
		"created by":                 `cli:\x1b[1A\x1b[2K\rstatus: revoked`,
		"hint":                       `tok_ab\x1b]0;owned\a…cd`,
		"status":                     "active",
	} {
		assert.Equal(t, v, fields[k], "show's %q line", k)
	}

	list := ok(t, dir, env, "list")
	wantPrintable(t, "list", list.stdout)
	assert.Contains(t, list.stdout, `ci\x1b[1A\x1b[2K\rstatus: revoked`)
	assert.Equal(t, 2, strings.Count(list.stdout, "\n"), "the header and one row")

	expiring := ok(t, dir, env, "expiring", "--within", "2d")
	wantPrintable(t, "expiring", expiring.stdout)
	assert.Contains(t, expiring.stdout, `org:acme\x1b]0;owned\a`)

	// JSON escapes too, and still decodes to exactly what is stored (but
	// the bytes that are not UTF-8, which JSON cannot carry).
	js := ok(t, dir, env, "show", tok.ID, "--json")
	wantPrintable(t, "show --json", js.stdout)
	var got apitoken.Token
	require.NoError(t, json.Unmarshal([]byte(js.stdout), &got))
	assert.Equal(t, tok.Name, got.Name)
	assert.Equal(t, rtlo+isolate+"bad\uFFFD\uFFFD", got.Description)
	assert.Equal(t, tok.Metadata, got.Metadata)
	assert.Equal(t, tok.Roles, got.Roles)
	assert.Equal(t, tok.Resources, got.Resources)
	lines := ok(t, dir, env, "list", "--json")
	wantPrintable(t, "list --json", lines.stdout)
	require.Len(t, listJSON(t, lines.stdout), 1)
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"plain", "ci runner – ÄÖ 日本 🙂", "ci runner – ÄÖ 日本 🙂"},
		{"backslash stays", `C:\deploy`, `C:\deploy`},
		{"C0", "a\x00b\x1b[2Kc\r\n\t", `a\x00b\x1b[2Kc\r\n\t`},
		{"DEL and C1", "a\x7fb\u0085c\u009b", `a\x7fb\u0085c\u009b`},
		{"bidi", "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", `\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069`},
		{"separators and format", "a\u2028b\u2029c\u200bd\u00a0e", `a\u2028b\u2029c\u200bd\u00a0e`},
		{"not UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"replacement character stays", "a\uFFFDb", "a\uFFFDb"},
		{"astral format", "a\U000E0001b", `a\U000e0001b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, printable(tc.in), "printable(%q)", tc.in)
		})
	}
}

func TestWriteJSONEscapesWhatJSONLeaves(t *testing.T) {
	t.Parallel()
	in := map[string]string{"v": "a\x7fb\u009bc\u202ed\U000E0001e 🙂 <&>\x1b"}
	var b strings.Builder
	require.NoError(t, writeJSON(&b, in))
	assert.Equal(t, `{"v":"a\u007fb\u009bc\u202ed\udb40\udc01e 🙂 \u003c\u0026\u003e\u001b"}`+"\n", b.String())
	var out map[string]string
	require.NoError(t, json.Unmarshal([]byte(b.String()), &out))
	assert.Equal(t, in, out, "decodes to the same values")
}
