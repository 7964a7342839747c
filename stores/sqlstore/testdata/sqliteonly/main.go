// Command sqliteonly is a program that uses the SQLite store alone, built
// by TestDriversLinked to show that it links no PostgreSQL driver.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

func main() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "tokens.db", sqlite.WithMigrate())
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
