package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"

	"github.com/apitoken/apitoken"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// app is one invocation: its streams, environment and global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool

	storeURL    string
	policyPath  string
	hashKeyFile string
	actor       string

	policy apitoken.Policy
	keys   [][]byte
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv, stderrTTY: isTerminal(stderr)}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, message(err))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage // cobra's own: unknown command or flag, wrong arguments
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "apitoken",
		Short: "Manage API tokens: migrate, issue, list, show, update, regenerate, revoke, delete, prune",
		Long: `apitoken manages the API tokens of an application that uses the
github.com/apitoken/apitoken library, in the application's own store.

Give it the store, the policy and the hash keys the application's servers use:
with other hash keys, the tokens it issues do not validate on the servers (and
regenerated ones neither). Every change is recorded with the actor (--actor,
default "cli:$USER"), e.g. as a new token's created_by.

The store remembers the prefix of the policy its first token was issued
under. With a policy of another prefix, issue, update, regenerate and prune
refuse to run (exit code 3); list, show, expiring, revoke, revoke-all and
delete run and warn on stderr, as they do for a policy that differs from the
one the store's tokens were last issued under.

` + storeHelp + `

Environment:
  APITOKEN_STORE      the store URL (--store wins)
  APITOKEN_POLICY     the policy file, the JSON form of apitoken.Policy (--policy wins);
                      without one, the zero Policy (prefix "tok", 6-month default lifetime,
                      90-day idle timeout, no roles). A host generates it from its Go policy
                      with json.MarshalIndent(policy, "", "  ")
  APITOKEN_HASH_KEYS  the hash keys, comma-separated, hex or base64, the current key first
                      (--hash-key-file wins: a file with the same, commas or newlines);
                      without keys, tokens are hashed with plain SHA-256

` + exitHelp,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see %s --help)", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.storeURL, "store", "", "store URL: sqlite:PATH, postgres://…, redis://…, redis+cluster://… (env APITOKEN_STORE)")
	pf.StringVar(&a.policyPath, "policy", "", "policy file (JSON; env APITOKEN_POLICY)")
	pf.StringVar(&a.hashKeyFile, "hash-key-file", "", "file of hash keys, hex or base64, current first (env APITOKEN_HASH_KEYS holds the keys themselves)")
	pf.StringVar(&a.actor, "actor", "", `who acts, for the audit trail (default "cli:$USER")`)

	root.AddCommand(a.migrateCmd(), a.issueCmd(), a.listCmd(), a.showCmd(), a.updateCmd(),
		a.regenerateCmd(), a.revokeCmd(), a.revokeAllCmd(), a.deleteCmd(), a.expiringCmd(), a.pruneCmd())
	return root
}

// do makes a RunE: it loads the configuration, opens the store (migrating
// it for migrate), checks the policy against the store's (see use), calls
// f and closes the store; f's errors get their exit codes.
func (a *app) do(u use, f func(ctx context.Context, s *openedStore, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := apitoken.WithActor(cmd.Context(), a.actorName())
		if err := a.load(); err != nil {
			return err
		}
		s, err := openStore(ctx, a.storeURL, a.policy, u == migrates)
		if err != nil {
			return err
		}
		err = a.checkPolicy(ctx, s, u)
		if err == nil {
			err = f(ctx, s, args)
		}
		if cerr := s.close(context.WithoutCancel(ctx)); err == nil && cerr != nil {
			err = storeErr(cerr)
		}
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) {
				err = &exitError{classify(err), err}
			}
		}
		return err
	}
}

// load reads the store URL, the policy and the hash keys from the flags or
// the environment.
func (a *app) load() error {
	if a.storeURL == "" {
		a.storeURL = a.getenv("APITOKEN_STORE")
	}
	if a.storeURL == "" {
		return &exitError{exitUsage, errNoStore}
	}
	if a.policyPath == "" {
		a.policyPath = a.getenv("APITOKEN_POLICY")
	}
	if a.policyPath != "" {
		p, err := apitoken.LoadPolicy(a.policyPath)
		if errors.Is(err, apitoken.ErrPolicy) {
			return &exitError{exitPolicy, err}
		}
		if err != nil {
			return usagef("policy: %v", err)
		}
		a.policy = p
	}
	keys, err := readHashKeys(a.hashKeyFile, a.getenv("APITOKEN_HASH_KEYS"))
	if err != nil {
		return usagef("%v", err)
	}
	a.keys = keys
	return nil
}

func (a *app) actorName() string {
	if a.actor != "" {
		return a.actor
	}
	name := a.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	return "cli:" + name
}

// issuer returns an Issuer on s's store itself (so that it sees the
// store's optional capabilities) with the policy and keys.
func (a *app) issuer(s *openedStore) (*apitoken.Issuer, error) {
	var opts []apitoken.IssuerOption
	if len(a.keys) > 0 {
		opts = append(opts, apitoken.WithHashKeys(a.keys...))
	}
	return apitoken.NewIssuer(s.Store, a.policy, opts...)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
