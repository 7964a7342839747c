// Package postgres opens PostgreSQL databases for package sqlstore
// ([github.com/apitoken/apitoken/stores/sqlstore]) through the pgx driver
// (database/sql name "pgx"). It is the only package of the module that
// imports pgx, so a program that uses SQLite alone does not link it.
//
// Quick start (migration stays an explicit step, at deployment or start-up):
//
//	db, err := postgres.OpenDB(ctx, dsn)
//	defer db.Close()
//	store, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithSchema("auth"))
//	err = store.Migrate(ctx) // or store.CheckSchema(ctx) where a deployment step migrates
package postgres
