package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

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

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
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
		cols[i] = strings.Map(func(r rune) rune { // one row per token, whatever a name holds
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
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
	line := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
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
