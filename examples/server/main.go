// Command server is a small HTTP API whose one endpoint, GET /devices,
// needs an API token, with the admin API (package adminapi) mounted at
// /api/v1 and the token console (package adminui) at /settings/api-tokens
// to manage the tokens. Tokens live in a SQLite file (no setup) or,
// with -postgres, in PostgreSQL. Run it from the repository root:
//
//	go run ./examples/server
//
// On first start it issues a demo token and a management token and prints
// them once, with curl commands to try (README.md walks through the rest).
// Flags: -addr, -db, -postgres, -policy to read the security policy from a
// file (examples/server/policy.json is the built-in one), and -behind-tls
// for a server behind a TLS-terminating proxy (console cookies are then
// Secure).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	file := flag.String("db", "apitoken-example.db", "SQLite database file (created if missing)")
	dsn := flag.String("postgres", "", "PostgreSQL DSN to use instead of SQLite, e.g. postgres://user:pass@localhost/app")
	policyFile := flag.String("policy", "", "policy file (JSON, see apitoken.ParsePolicy); empty: the built-in policy")
	behindTLS := flag.Bool("behind-tls", false, "the server sits behind a proxy that terminates TLS: console cookies are Secure")
	flag.Parse()
	if *policyFile != "" {
		p, err := apitoken.LoadPolicy(*policyFile)
		if err != nil {
			log.Fatal(err) // names the file, line and field of a mistake
		}
		policy = p
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *file, *dsn, options{behindTLS: *behindTLS, logger: slog.Default()}); err != nil {
		log.Fatal(err)
	}
}

// policy: tokens start with "demo_"; the reader role may read devices, the
// token-admin role may also manage tokens (the "apitokens" API); 60
// requests a minute with bursts of 10 (policy.json says the same).
var policy = apitoken.Policy{
	Prefix: "demo",
	Roles: map[string]apitoken.Role{
		"reader":      {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
		"token-admin": {Grants: apitoken.Grants{"devices": apitoken.AccessFull, "apitokens": apitoken.AccessFull}},
	},
	OrgRateLimit: apitoken.Limit{Rate: apitoken.Per(60, time.Minute), Burst: 10},
}

const org = "org_demo"

func run(ctx context.Context, addr, file, dsn string, o options) error {
	store, err := open(ctx, file, dsn)
	if err != nil {
		return err
	}
	defer store.Close(context.Background()) // after the Validator's last flush
	s, err := newServer(store, o)
	if err != nil {
		return err
	}
	if err := demoToken(ctx, s.iss, addr); err != nil {
		s.v.Close(ctx)
		return err
	}
	srv := &http.Server{Addr: addr, Handler: s, ReadHeaderTimeout: 5 * time.Second}
	context.AfterFunc(ctx, func() { srv.Shutdown(context.Background()) }) // on ^C or SIGTERM
	log.Printf("listening on http://%s (tokens in %s)", addr, store)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return s.v.Close(context.Background()) // a last flush of last-used times
}

// open opens the store: the SQLite file, whose tables are created on first
// start, or PostgreSQL if a DSN is given, migrated here explicitly (in
// production, a deployment step).
func open(ctx context.Context, file, dsn string) (*sqlstore.Store, error) {
	if dsn == "" {
		return sqlite.Open(ctx, file, sqlite.WithMigrate())
	}
	db, err := postgres.OpenDB(ctx, dsn)
	if err != nil {
		return nil, err
	}
	store, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithCloseDB())
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close(ctx)
		return nil, err
	}
	return store, nil
}

// demoToken issues a reader token and a token-admin token if the store has
// none, and prints them: the only time their plaintexts are ever shown.
func demoToken(ctx context.Context, iss *apitoken.Issuer, addr string) error {
	page, err := iss.List(ctx, apitoken.Filter{Limit: 1})
	if err != nil || len(page.Tokens) > 0 {
		return err // issued on an earlier start (delete the database for new ones)
	}
	ctx = apitoken.WithActor(ctx, "examples/server")
	secret, _, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: org, Name: "demo", Roles: []string{"reader"}})
	if err != nil {
		return err
	}
	admin, _, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: org, Name: "admin", Roles: []string{"token-admin", "reader"}})
	if err != nil {
		return err
	}
	fmt.Printf("demo token (shown once): %s\n", secret.Reveal())
	fmt.Printf("try: curl -H 'Authorization: Bearer %s' http://%s/devices\n", secret.Reveal(), addr)
	fmt.Printf("management token (shown once): %s\n", admin.Reveal())
	fmt.Printf("try: curl -H 'Authorization: Bearer %s' http://%s/api/v1/orgs/%s/apitokens\n", admin.Reveal(), addr, org)
	fmt.Printf("or open http://%s/login and sign in to the token console with the management token\n", addr)
	return nil
}
