package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/spf13/cobra"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the store's schema (SQL stores; Redis needs none)",
		Long: `migrate creates or upgrades the tables of a SQL store to the schema this
program uses. It is idempotent and safe to run from several places at once.
Every other command fails with exit code 5 on a store that is not migrated;
a SQLite file that does not exist is created by migrate only. A Redis store
has no schema: migrate only checks that it answers.`,
		Args: cobra.NoArgs,
		RunE: a.do(migrates, func(ctx context.Context, s *openedStore, _ []string) error {
			if s.sql == nil {
				fmt.Fprintln(a.stdout, "redis store: no schema to migrate")
				return nil
			}
			v, err := s.sql.Version(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s store: schema at version %d\n", s.sql.Dialect(), v)
			return nil
		}),
	}
}

// tokenFlags are the flags of issue and update that describe a token.
type tokenFlags struct {
	name, description string
	roles, resources  []string
	grants, metadata  []string // api=level, key=value
	lifetime          string
	ipFilter          string
}

func (f *tokenFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the token's name")
	fl.StringVar(&f.description, "description", "", "the token's description")
	fl.StringSliceVar(&f.roles, "roles", nil, "roles the policy defines, comma-separated or repeated")
	fl.StringSliceVar(&f.grants, "grants", nil, `per-API access, api=none|read|full, comma-separated or repeated, e.g. devices=read,billing=none ("*" for all APIs)`)
	fl.StringSliceVar(&f.resources, "resources", nil, "resources the token is limited to (e.g. site IDs); none: all")
	fl.StringVar(&f.lifetime, "lifetime", "", `lifetime: "6 months", "90 days", "12 hours", "6mo", "90d", "none"; default: the policy's`)
	fl.StringVar(&f.ipFilter, "ip-filter", "", `a named IP filter of the policy, or CIDR prefixes/addresses, comma-separated ("203.0.113.0/24,2001:db8::1")`)
	fl.StringArrayVar(&f.metadata, "metadata", nil, "metadata, key=value, repeated for more (a value may hold commas)")
}

func (a *app) issueCmd() *cobra.Command {
	var (
		f                tokenFlags
		kind, owner, org string
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "issue --name NAME (--owner user:ID | --kind org --org ORG) [flags]",
		Short: "Issue a token and print its key once",
		Long: `issue creates a token and prints its key on stdout, once: nothing can show it
again, and only a hint such as "tok_8f3K…x9Q2" is stored. The record goes to
stderr (with --json: one JSON object on stdout, the record with a "key" field),
so that KEY=$(apitoken issue …) captures the key alone. Nothing is logged.`,
		Example: `  apitoken issue --store sqlite:tokens.db --kind org --org acme --name ci \
      --grants devices=read --lifetime "6 months"
  apitoken issue --owner user:42 --name laptop --roles observer --lifetime 90d`,
		Args: cobra.NoArgs,
		RunE: a.do(writes, func(ctx context.Context, s *openedStore, _ []string) error {
			spec := apitoken.Spec{Name: f.name, Description: f.description, OrgID: org,
				Roles: f.roles, Resources: f.resources}
			var err error
			if spec.Metadata, err = flagMetadata(f.metadata); err != nil {
				return err
			}
			if owner != "" {
				if o, err := parseOwner(owner); err == nil {
					spec.Kind, spec.OwnerID = o.Kind, o.ID
				} else {
					spec.OwnerID = owner
				}
			}
			if kind != "" {
				k, err := parseKind(kind)
				if err != nil {
					return usagef("--kind: %v", err)
				}
				if spec.Kind != 0 && spec.Kind != k {
					return usagef("--kind %s contradicts --owner %s", kind, owner)
				}
				spec.Kind = k
			}
			if spec.Kind == 0 {
				return usagef("give --kind user|org, or --owner user:ID or org:ID")
			}
			if spec.Kind == apitoken.KindOrg && spec.OrgID == "" {
				spec.OrgID = spec.OwnerID // an org token's org is its owner
			}
			if f.name == "" {
				return usagef("--name is required")
			}
			if spec.Grants, err = flagGrants(f.grants); err != nil {
				return err
			}
			if spec.Lifetime, err = flagLifetime(f.lifetime); err != nil {
				return err
			}
			ipf, items := parseIPFilter(f.ipFilter)
			spec.IPFilter, spec.IPPrefixes = ipf.Name, items
			if ipf.Name != "" {
				spec.IPPrefixes = nil
			}
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			a.warnFirstRecord(s)
			secret, tok, err := iss.Issue(ctx, spec)
			if err != nil {
				return err
			}
			return a.printKey(secret, tok, asJSON)
		}),
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&kind, "kind", "", "user or org")
	fl.StringVar(&owner, "owner", "", "the owner: user:ID or org:ID (or an ID, with --kind); an org token's owner defaults to --org")
	fl.StringVar(&org, "org", "", "the org (required for org tokens; informational for user tokens)")
	fl.BoolVar(&asJSON, "json", false, "print the record and the key as one JSON object on stdout")
	return cmd
}

// printKey prints a new key once on stdout, and the record on stderr (or
// both as JSON on stdout).
func (a *app) printKey(secret apitoken.Secret, tok *apitoken.Token, asJSON bool) error {
	v := a.view(tok, time.Now())
	if asJSON {
		return writeJSON(a.stdout, keyJSON{tokenJSON: v, Key: secret.Reveal()})
	}
	if _, err := fmt.Fprintln(a.stdout, secret.Reveal()); err != nil {
		return err
	}
	if err := details(a.stderr, v); err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, "The key above is shown once: store it now.")
	return nil
}

func flagGrants(items []string) (apitoken.Grants, error) {
	if len(items) == 0 {
		return nil, nil
	}
	g, err := parseGrants(items)
	if err != nil {
		return nil, usagef("--grants: %v", err)
	}
	return g, nil
}

func flagMetadata(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, usagef("--metadata %q: want key=value", it)
		}
		m[k] = v
	}
	return m, nil
}

func flagLifetime(s string) (apitoken.Lifetime, error) {
	l, err := parseLifetime(s)
	if err != nil {
		return l, usagef("--lifetime: %v", err)
	}
	return l, nil
}

// filterFlags are the selection flags of list and expiring.
type filterFlags struct {
	owner, org, kind string
}

func (f *filterFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.owner, "owner", "", "only this owner's tokens: user:ID or org:ID")
	fl.StringVar(&f.org, "org", "", "only tokens of this org")
	fl.StringVar(&f.kind, "kind", "", "only user or org tokens")
}

func (f *filterFlags) filter() (apitoken.Filter, error) {
	var flt apitoken.Filter
	var err error
	if f.owner != "" {
		if flt.Owner, err = parseOwner(f.owner); err != nil {
			return flt, usagef("--owner: %v", err)
		}
	}
	if f.kind != "" {
		if flt.Kind, err = parseKind(f.kind); err != nil {
			return flt, usagef("--kind: %v", err)
		}
	}
	flt.OrgID = f.org
	flt.Limit = apitoken.MaxPageSize
	return flt, nil
}

func (a *app) listCmd() *cobra.Command {
	var (
		f      filterFlags
		st     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List tokens (hints only) as a table or JSON lines",
		Long: `list prints every token matching the filters, in creation order, as a table
(id, name, kind, owner, hint, status, expiry under the current policy, last
use, creator) or, with --json, as JSON lines: one object per token, the
fields of "show --json". Keys are never shown; only hints.`,
		Example: `  apitoken list --owner org:acme --status active
  apitoken list --json | jq -r 'select(.status == "expired") | .id'`,
		Args: cobra.NoArgs,
		RunE: a.do(reads, func(ctx context.Context, s *openedStore, _ []string) error {
			flt, err := f.filter()
			if err != nil {
				return err
			}
			switch st {
			case "", statusActive, statusExpired, statusRevoked:
			default:
				return usagef("--status %q: want active, expired or revoked", st)
			}
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			now := time.Now()
			n := 0 // tokens read, before --status
			var tbl *table
			if !asJSON {
				tbl = newTable(a.stdout)
			}
			for t, err := range iss.All(ctx, flt) {
				if err != nil {
					return err
				}
				n++
				v := a.view(t, now)
				if st != "" && v.Status != st {
					continue
				}
				if asJSON {
					if err := writeJSON(a.stdout, v); err != nil {
						return err
					}
				} else {
					tbl.row(v)
				}
			}
			if tbl != nil {
				if err := tbl.flush(); err != nil {
					return err
				}
			}
			if n == 0 {
				return a.warnEmptyNamespace(ctx, s)
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().StringVar(&st, "status", "", "only active, expired or revoked tokens")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines, one object per token")
	return cmd
}

func (a *app) showCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one token (hint only)",
		Args:  cobra.ExactArgs(1),
		RunE: a.do(reads, func(ctx context.Context, s *openedStore, args []string) error {
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			t, err := iss.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printToken(t, asJSON)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as one JSON object")
	return cmd
}

func (a *app) printToken(t *apitoken.Token, asJSON bool) error {
	v := a.view(t, time.Now())
	if asJSON {
		return writeJSON(a.stdout, v)
	}
	return details(a.stdout, v)
}

func (a *app) updateCmd() *cobra.Command {
	var (
		f         tokenFlags
		ifVersion int64
		asJSON    bool
		cmd       *cobra.Command
	)
	cmd = &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a token's name, description, roles, grants, resources, lifetime, IP filter or metadata",
		Long: `update changes the given fields of a token and prints the result; flags not
given stay as they are. An empty value clears a list (--roles "", --grants "",
--ip-filter "" removes the IP filter). A new --lifetime counts from now, but not
past the secret's issue plus the policy's max_lifetime (regenerate for that).
A revoked or expired token cannot be changed (exit code 6). With --if-version,
the update applies only if the token's version (see show) is still that one,
and fails with exit code 4 otherwise.`,
		Example: `  apitoken update 0192… --description nightly --if-version 3
  apitoken update 0192… --ip-filter office --lifetime "3 months"`,
		Args: cobra.ExactArgs(1),
		RunE: a.do(writes, func(ctx context.Context, s *openedStore, args []string) error {
			var p apitoken.Patch
			changed := cmd.Flags().Changed
			var err error
			if changed("name") {
				p.Name = &f.name
			}
			if changed("description") {
				p.Description = &f.description
			}
			if changed("roles") {
				p.Roles = &f.roles
			}
			if changed("resources") {
				p.Resources = &f.resources
			}
			if changed("metadata") {
				m, err := flagMetadata(f.metadata)
				if err != nil {
					return err
				}
				p.Metadata = &m
			}
			if changed("grants") {
				g, err := flagGrants(f.grants)
				if err != nil {
					return err
				}
				p.Grants = &g
			}
			if changed("lifetime") {
				l, err := flagLifetime(f.lifetime)
				if err != nil {
					return err
				}
				p.Lifetime = &l
			}
			if changed("ip-filter") {
				ipf, items := parseIPFilter(f.ipFilter)
				if ipf.Name == "" && len(ipf.Prefixes) == 0 && len(items) > 0 {
					for _, it := range items {
						if _, err := apitoken.ParsePrefix(it); err != nil {
							return usagef("--ip-filter: %v", err)
						}
					}
				}
				p.IPFilter = &ipf
			}
			if p == (apitoken.Patch{}) {
				return usagef("nothing to update: give at least one of --name, --description, --roles, --grants, --resources, --lifetime, --ip-filter, --metadata")
			}
			p.IfVersion = ifVersion
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			t, err := iss.Update(ctx, args[0], p)
			if err != nil {
				return err
			}
			return a.printToken(t, asJSON)
		}),
	}
	f.register(cmd)
	cmd.Flags().Int64Var(&ifVersion, "if-version", 0, "apply only if the token's version is still this one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

func (a *app) regenerateCmd() *cobra.Command {
	var (
		lifetime, grace string
		ifVersion       int64
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "regenerate ID [flags]",
		Short: "Give a token a new key and a new expiry, and print the key once",
		Long: `regenerate replaces a token's secret (same ID and settings) and prints the new
key on stdout, once, as issue does. --lifetime is the new lifetime, counted from
now, one the policy allows (its allowed_lifetimes, if it sets them); default:
the policy's. With --grace the old key keeps working that long, so clients can
switch over. A revoked or expired token cannot be regenerated (exit code 6).`,
		Example: `  apitoken regenerate 0192… --lifetime "12 months" --grace "1 hour"`,
		Args:    cobra.ExactArgs(1),
		RunE: a.do(writes, func(ctx context.Context, s *openedStore, args []string) error {
			l, err := flagLifetime(lifetime)
			if err != nil {
				return err
			}
			var opts []apitoken.RegenerateOption
			if grace != "" {
				d, err := parseSpan(grace)
				if err != nil {
					return usagef("--grace: %v", err)
				}
				opts = append(opts, apitoken.WithGrace(d))
			}
			if ifVersion != 0 {
				opts = append(opts, apitoken.WithIfVersion(ifVersion))
			}
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			a.warnFirstRecord(s)
			secret, tok, err := iss.Regenerate(ctx, args[0], l, opts...)
			if err != nil {
				return err
			}
			return a.printKey(secret, tok, asJSON)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&lifetime, "lifetime", "", `the new lifetime: "6 months", "90d", …; default: the policy's`)
	fl.StringVar(&grace, "grace", "", `how long the old key keeps working ("1 hour", "30m"); default: it stops at once`)
	fl.Int64Var(&ifVersion, "if-version", 0, "regenerate only if the token's version is still this one")
	fl.BoolVar(&asJSON, "json", false, "print the record and the new key as one JSON object on stdout")
	return cmd
}

func (a *app) revokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it stops working at once (revoking twice is fine)",
		Args:  cobra.ExactArgs(1),
		RunE: a.do(defends, func(ctx context.Context, s *openedStore, args []string) error {
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			if err := iss.Revoke(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked %s\n", args[0])
			return nil
		}),
	}
}

func (a *app) revokeAllCmd() *cobra.Command {
	var owner string
	cmd := &cobra.Command{
		Use:     "revoke-all --owner user:ID|org:ID",
		Short:   "Revoke every token of an owner",
		Example: `  apitoken revoke-all --owner user:42`,
		Args:    cobra.NoArgs,
		RunE: a.do(defends, func(ctx context.Context, s *openedStore, _ []string) error {
			if owner == "" {
				return usagef("--owner is required")
			}
			o, err := parseOwner(owner)
			if err != nil {
				return usagef("--owner: %v", err)
			}
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			n, err := iss.RevokeAll(ctx, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked %d tokens of %s\n", n, o)
			return nil
		}),
	}
	cmd.Flags().StringVar(&owner, "owner", "", "the owner: user:ID or org:ID")
	return cmd
}

func (a *app) deleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a token: it stops working at once and is gone from listings",
		Args:  cobra.ExactArgs(1),
		RunE: a.do(defends, func(ctx context.Context, s *openedStore, args []string) error {
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			if err := iss.Delete(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted %s\n", args[0])
			return nil
		}),
	}
}

func (a *app) expiringCmd() *cobra.Command {
	var (
		f      filterFlags
		within string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "expiring --within SPAN [flags]",
		Short: "List live tokens that expire within a span, soonest first",
		Long: `expiring lists the live tokens (neither revoked nor expired) whose expiry under
the current policy falls within --within from now, soonest first: for a
"your token expires in 7 days" mail. A table, or JSON lines with --json.`,
		Example: `  apitoken expiring --within 7d --json | jq -r .owner_id`,
		Args:    cobra.NoArgs,
		RunE: a.do(reads, func(ctx context.Context, s *openedStore, _ []string) error {
			d, err := parseSpan(within)
			if err != nil {
				return usagef("--within: %v", err)
			}
			flt, err := f.filter()
			if err != nil {
				return err
			}
			iss, err := a.issuer(s)
			if err != nil {
				return err
			}
			toks, err := iss.Expiring(ctx, flt, d)
			if err != nil {
				return err
			}
			if len(toks) == 0 {
				if err := a.warnEmptyNamespace(ctx, s); err != nil {
					return err
				}
			}
			now := time.Now()
			if asJSON {
				for _, t := range toks {
					if err := writeJSON(a.stdout, a.view(t, now)); err != nil {
						return err
					}
				}
				return nil
			}
			tbl := newTable(a.stdout)
			for _, t := range toks {
				tbl.row(a.view(t, now))
			}
			return tbl.flush()
		}),
	}
	f.register(cmd)
	cmd.Flags().StringVar(&within, "within", "7 days", `the span: "7 days", "7d", "12h"`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines, one object per token")
	return cmd
}
