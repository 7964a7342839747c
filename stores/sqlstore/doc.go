// Package sqlstore is an [apitoken.Store] on a database/sql database,
// SQLite or PostgreSQL. It imports no driver: package sqlstore/sqlite opens
// SQLite through modernc.org/sqlite (pure Go, no cgo), the embedded
// default, and package sqlstore/postgres opens PostgreSQL through pgx, so a
// program links only the driver it uses.
//
// Quick start (SQLite; sqlite.Open(ctx, path, sqlite.WithMigrate()) does
// the first three steps in one call):
//
//	db, err := sqlite.OpenDB(ctx, "tokens.db") // or postgres.OpenDB(ctx, dsn) and sqlstore.Postgres
//	defer db.Close()
//	store, err := sqlstore.New(db, sqlstore.SQLite)
//	err = store.Migrate(ctx) // creates or upgrades the tables; never implicit
//	iss, err := apitoken.NewIssuer(store, policy)
//	v, err := apitoken.NewValidator(store, policy)
//
// # Tables
//
// The store keeps four tables, tokens, hashes, policy and migrations, each named
// with a prefix ([DefaultTablePrefix] "apitoken_", see [WithTablePrefix])
// and, on PostgreSQL, optionally in a schema ([WithSchema]), so that they
// can live beside the host's own. Their columns are the store's own: read
// and write tokens through the Store, never the tables.
//
// The policy table holds one row: the identity of the policy the store's
// tokens are issued under ([apitoken.PolicyRecorder]), written by the first
// Issue, so an Issuer whose policy has another prefix is refused. Its
// prefix never changes; to move the store to another prefix, delete the row
// by hand (DELETE FROM apitoken_policy).
//
// # Schema and migrations
//
// The migrations are embedded in the package; [SchemaVersion] is the
// latest. [Store.Migrate] applies the missing ones in one transaction and
// must be called explicitly, at start-up or in a deployment step; it is
// idempotent and safe to run from several replicas at once. Until the
// database is at SchemaVersion, every call of the store fails with an error
// matching [ErrNotMigrated] (no tables), [ErrSchemaOutdated] (an older
// schema: call Migrate) or [ErrSchemaTooNew] (a newer program migrated it:
// upgrade). [Store.CheckSchema] reports the same without doing anything
// else.
//
// # Durability and concurrency
//
// A Create, Update, Revoke, RevokeAll or Delete that returned is committed
// (on SQLite opened by sqlite.OpenDB, on disk). A Store is safe for
// concurrent use, and several processes may share one database: Update is
// optimistic ([apitoken.ErrConflict] on a stale version), Create's
// per-owner bound is atomic, a last-used time only moves forwards whatever
// order replicas flush in, and pruners running at once delete disjoint
// rows, one batch at a time (on PostgreSQL they take turns on an advisory
// lock). Each validation is one database round trip.
//
// # Errors
//
// A missing token is [apitoken.ErrNotFound]; a write the contract refuses
// (a taken ID or hash, a stale version) is [apitoken.ErrConflict]; a full
// owner is [apitoken.ErrTooManyTokens]. Anything else (the database down, a
// closed *sql.DB, a row that cannot be decoded) is returned wrapped with the
// operation, and the Validator reports it as [apitoken.ErrStoreUnavailable].
// A row that cannot be decoded is an error naming its token's ID; other
// tokens are unaffected.
//
// # Security
//
// The store keeps only hashes of tokens (and, for recoverable tokens, the
// secret sealed by the Issuer), never a plaintext token. Error messages
// never contain a hash, a secret or a DSN.
package sqlstore
