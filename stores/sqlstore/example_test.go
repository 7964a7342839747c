package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

// A store on a SQLite file, opened by package sqlstore/sqlite: open,
// migrate, issue, validate, revoke. (sqlite.Open with sqlite.WithMigrate
// does the first three steps in one call.)
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := sqlite.OpenDB(ctx, filepath.Join(dir, "tokens.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Get(ctx, "tok_1")
	fmt.Println("before Migrate:", errors.Is(err, sqlstore.ErrNotMigrated))
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	version, _ := store.Version(ctx)
	fmt.Println("schema version:", version)

	policy := apitoken.Policy{Prefix: "acme", DefaultRoles: []string{"reader"},
		Roles: map[string]apitoken.Role{"reader": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}}}
	iss, _ := apitoken.NewIssuer(store, policy)
	v, _ := apitoken.NewValidator(store, policy)
	secret, tok, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})
	if err != nil {
		log.Fatal(err)
	}
	req := apitoken.Request{Org: "org_1", API: "devices", Access: apitoken.AccessRead}
	p, err := v.Validate(ctx, secret.Reveal(), req)
	fmt.Println("validate:", p.Name, err)

	if err := iss.Revoke(ctx, tok.ID); err != nil {
		log.Fatal(err)
	}
	_, err = v.Validate(ctx, secret.Reveal(), req)
	fmt.Println("after revoke:", errors.Is(err, apitoken.ErrRevoked))
	_ = v.Close(ctx) // writes the last pending last-used times
	// Output:
	// before Migrate: true
	// schema version: 3
	// validate: ci <nil>
	// after revoke: true
}
