package postgres_test

import (
	"context"
	"errors"
	"log"

	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/postgres"
)

// A store on PostgreSQL: the tables live in a schema of their own, and
// replicas check the schema at start-up where a deployment step migrates.
func ExampleOpenDB() {
	ctx := context.Background()
	db, err := postgres.OpenDB(ctx, "postgres://app:secret@localhost/app?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithSchema("auth"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(ctx)
	if err := store.CheckSchema(ctx); errors.Is(err, sqlstore.ErrNotMigrated) || errors.Is(err, sqlstore.ErrSchemaOutdated) {
		log.Fatal("run the deployment step that calls store.Migrate: ", err)
	} else if err != nil {
		log.Fatal(err)
	}
}
