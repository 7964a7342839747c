// Package sqlite opens SQLite databases for [sqlstore] through
// modernc.org/sqlite (pure Go, no cgo). It is the only package of the
// module that imports that driver, so a program that uses PostgreSQL alone
// does not link it.
//
// Quick start, the embedded default (one file, migrated on open):
//
//	store, err := sqlite.Open(ctx, "tokens.db", sqlite.WithMigrate())
//	defer store.Close(ctx) // closes the database too
//	iss, err := apitoken.NewIssuer(store, policy)
//	v, err := apitoken.NewValidator(store, policy)
//
// A host that shares the database with its own tables opens it with
// [OpenDB] and makes the store with [sqlstore.New] and [sqlstore.SQLite].
//
// # Durability and concurrency
//
// [OpenDB] opens the file in WAL mode (readers never block the writer) with
// synchronous=FULL (a commit is on disk before it returns, so it survives a
// crash or power loss), busy_timeout [BusyTimeout] and foreign keys on,
// and with transactions that begin IMMEDIATE, taking the write lock up
// front; it checks that each setting took. Several processes may share the
// file.
package sqlite
