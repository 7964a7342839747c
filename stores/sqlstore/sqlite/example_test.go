package sqlite_test

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

// The embedded default: one file, its tables created on first open.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlite-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tokens.db")

	_, err = sqlite.Open(ctx, path)
	fmt.Println("without WithMigrate:", errors.Is(err, sqlstore.ErrNotMigrated))

	store, err := sqlite.Open(ctx, path, sqlite.WithMigrate())
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(ctx) // closes the database too
	policy := apitoken.Policy{Prefix: "acme"}
	iss, err := apitoken.NewIssuer(store, policy)
	if err != nil {
		log.Fatal(err)
	}
	_, tok, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})
	fmt.Println("issued:", tok.Name, err)
	// Output:
	// without WithMigrate: true
	// issued: ci <nil>
}
