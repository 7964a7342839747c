// Command postgresonly is a program that uses the PostgreSQL store alone,
// built by TestDriversLinked to show that it links no SQLite driver.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
)

func main() {
	ctx := context.Background()
	db, err := postgres.OpenDB(ctx, os.Getenv("DSN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer store.Close(ctx)
	v, err := apitoken.NewValidator(store, apitoken.Policy{Prefix: "acme"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer v.Close(ctx)
	_, err = v.Validate(ctx, os.Getenv("TOKEN"), apitoken.Request{})
	fmt.Println(err)
}
