package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apitoken/apitoken"
)

// Token statuses, as apitoken.Policy.Status names them.
const (
	statusActive  = string(apitoken.StatusActive)
	statusExpired = string(apitoken.StatusExpired)
	statusRevoked = string(apitoken.StatusRevoked)
)

// tokenJSON is a token as --json prints it: the stored record's JSON (never
// its hash or sealed secret) with its status and its expiry under the
// current policy.
type tokenJSON struct {
	*apitoken.Token
	Status string `json:"status"`
	// EffectiveExpiresAt is when the token stops working under the current
	// policy (a MaxLifetime may come before ExpiresAt); zero: never.
	EffectiveExpiresAt time.Time `json:"effective_expires_at,omitzero"`
}

// keyJSON is a token with its key: issue and regenerate --json only.
type keyJSON struct {
	tokenJSON
	Key string `json:"key"`
}

func (a *app) view(t *apitoken.Token, now time.Time) tokenJSON {
	return tokenJSON{Token: t, Status: string(a.policy.Status(t, now)), EffectiveExpiresAt: a.policy.ExpiresAt(t)}
}

// writeJSON writes v as one line of JSON. encoding/json escapes the C0
// controls but not DEL, the C1 controls or the bidirectional overrides, so
// those and every other rune Go deems not printable are written as \u
// escapes too: the line decodes to the same values and shows nothing a
// terminal would act on.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(b)+1)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b) // json.Marshal writes valid UTF-8
		if r < utf8.RuneSelf && r != 0x7f || strconv.IsPrint(r) {
			out = append(out, b[:n]...)
		} else {
			for _, u := range utf16.AppendRune(nil, r) {
				out = fmt.Appendf(out, `\u%04x`, u)
			}
		}
		b = b[n:]
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// printable returns s with every rune Go deems not printable (C0 and C1
// controls, DEL, bidirectional overrides and isolates, line separators,
// zero-width and other format characters, spaces but ' ') written as Go
// writes it in a quoted string ("\x1b", "\r", "\u202e"), and every byte
// that is not UTF-8 as "\xff": whatever a token's fields hold, what the
// CLI prints cannot move the cursor, retitle the terminal or reorder the
// text around it. Backslashes stay as they are, so a value shows as typed.
func printable(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || !strconv.IsPrint(r) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case strconv.IsPrint(r):
			b.WriteString(s[:n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return b.String()
}

// when formats an instant for tables: UTC to the minute, or none.
func when(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

var tableHeader = []string{"ID", "NAME", "KIND", "OWNER", "HINT", "STATUS", "EXPIRES", "LAST USED", "CREATED BY"}

// table writes tokens as aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(tableHeader, "\t"))
	return t
}

func (t *table) row(v tokenJSON) {
	cols := []string{v.ID, v.Name, v.Kind.String(), v.Owner().String(), v.Hint, v.Status,
		when(v.EffectiveExpiresAt, "never"), when(v.LastUsedAt, "never"), orDash(v.CreatedBy)}
	for i, c := range cols {
		cols[i] = printable(c) // one row per token, whatever a name holds
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details writes one token as "field: value" lines, for show and the
// record issue and regenerate print on stderr.
func details(w io.Writer, v tokenJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	line := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", printable(k), printable(val)) }
	line("id", v.ID)
	line("name", v.Name)
	if v.Description != "" {
		line("description", v.Description)
	}
	line("kind", v.Kind.String())
	line("owner", v.Owner().String())
	if v.OrgID != "" {
		line("org", v.OrgID)
	}
	line("hint", v.Hint)
	line("status", v.Status)
	if len(v.Roles) > 0 {
		line("roles", strings.Join(v.Roles, ", "))
	}
	if len(v.Grants) > 0 {
		var gs []string
		for _, api := range slices.Sorted(maps.Keys(v.Grants)) {
			gs = append(gs, api+"="+v.Grants[api].String())
		}
		line("grants", strings.Join(gs, ", "))
	}
	if len(v.Resources) > 0 {
		line("resources", strings.Join(v.Resources, ", "))
	}
	switch f := v.IPFilter; {
	case f.Name != "":
		line("ip filter", f.Name)
	case len(f.Prefixes) > 0:
		ps := make([]string, len(f.Prefixes))
		for i, p := range f.Prefixes {
			ps[i] = p.String()
		}
		line("ip filter", strings.Join(ps, ", "))
	}
	if v.RateLimit != nil {
		line("rate limit", fmt.Sprintf("%g/s, burst %d", float64(v.RateLimit.Rate), v.RateLimit.Burst))
	}
	for _, k := range slices.Sorted(maps.Keys(v.Metadata)) {
		line("metadata "+k, v.Metadata[k])
	}
	line("created", when(v.CreatedAt, "-"))
	line("created by", orDash(v.CreatedBy))
	line("expires", when(v.EffectiveExpiresAt, "never"))
	line("last used", when(v.LastUsedAt, "never"))
	if v.Revoked() {
		line("revoked", when(v.RevokedAt, "-"))
	}
	line("version", fmt.Sprint(v.Version))
	return tw.Flush()
}
