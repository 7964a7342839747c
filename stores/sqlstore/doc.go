// Package sqlstore is an [apitoken.Store] on a database/sql database:
// SQLite (through modernc.org/sqlite, pure Go, no cgo) as the embedded
// default, or PostgreSQL (through the pgx driver).
//
// Quick start (SQLite; for PostgreSQL use OpenPostgres(ctx, dsn) and
// sqlstore.Postgres):
//
//	db, err := sqlstore.OpenSQLite(ctx, "tokens.db") // WAL, synchronous=FULL, busy_timeout
//	defer db.Close()
//	store, err := sqlstore.New(db, sqlstore.SQLite)
//	err = store.Migrate(ctx) // creates or upgrades the tables; never implicit
//	iss, err := apitoken.NewIssuer(store, policy)
//	v, err := apitoken.NewValidator(store, policy)
//	go v.Run(ctx) // last-used times reach the store in batches
//
// # Data layout
//
// Three tables, named with a prefix ([DefaultTablePrefix] "apitoken_",
// see [WithTablePrefix]) and, on PostgreSQL, optionally in a schema
// ([WithSchema]):
//
//   - tokens: one row per token. Scalar fields are columns (kind, owner,
//     org, name, hint, hashes, sealed secret, version, rate limit); instants
//     are timestamptz on PostgreSQL and INTEGER microseconds since the Unix
//     epoch on SQLite, UTC, NULL for "none" (never used, never expires, not
//     revoked). A nil RateLimit is two NULL columns, distinct from a zero
//     Limit. Roles, grants, resources, the IP filter and metadata are one
//     JSON object (jsonb on PostgreSQL) in the attrs column: the store never
//     queries by them, always reads and writes them with the whole token,
//     and so needs no joins or child tables for them.
//   - hashes: hash → token ID, one row for each token's Hash and one for
//     a nonzero PrevHash (a regenerated secret in its grace period). Its
//     primary key is what makes a hash unique across both fields of every
//     token, and GetByHash is one query: a primary key lookup here joined
//     to the token's row.
//   - migrations: the schema versions applied, for [Store.Migrate].
//
// An owner is a kind and an ID (user "42" and org "42" are different
// owners): RevokeAll, the per-owner bound and List by owner match both
// columns. The issued_at column is when the current secret was issued
// (NULL: none recorded, read as the zero time); migration 2 added it and
// filled it from created_at.
//
// Indexes serve the hot path (hashes' primary key), listing (owner by
// kind and ID, org and kind, each followed by the ID, the listing order)
// and pruning (the last use or creation, the expiry, the revocation).
//
// # Schema and migrations
//
// The migrations are embedded in the package and numbered; [SchemaVersion]
// is the latest. [Store.Migrate] applies the missing ones in one
// transaction and must be called explicitly, at start-up or in a
// deployment step; it is idempotent and safe to run from several replicas
// at once (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE). A
// database migrated by a newer program is refused ([ErrSchemaTooNew]).
// [Store.CheckSchema] checks the version without changing anything.
//
// # Durability and concurrency
//
// A Create, Update, Revoke, RevokeAll or Delete that returned is committed.
// [OpenSQLite] opens SQLite in WAL mode with synchronous=FULL (a commit is
// on disk before it returns, so it survives a crash or power loss),
// busy_timeout [SQLiteBusyTimeout] and foreign keys on, and checks that the
// settings took; its write transactions take the write lock first. A
// Store is safe for concurrent use, and several processes may share one
// database:
//
//   - Update is optimistic: the row is replaced only if its version is the
//     caller's, else [apitoken.ErrConflict].
//   - Create's per-owner bound counts and inserts in one atomic step
//     (PostgreSQL: a per-owner (kind and ID) advisory lock for the transaction and the
//     count in the INSERT's condition; SQLite: the write lock).
//   - Touch writes a batch of last-used times in one statement on
//     PostgreSQL (an UPDATE joined to unnest) and in one transaction with
//     one prepared statement on SQLite. A time only ever moves forwards
//     (the UPDATE's condition), so replicas flushing out of order never
//     move it back.
//   - Prune deletes in bounded batches and re-checks its criteria in the
//     DELETE; on PostgreSQL it takes rows FOR UPDATE SKIP LOCKED, so
//     several pruners delete disjoint rows and never wait on each other.
//   - RevokeAll is one UPDATE statement.
//
// Each validation is one database round trip (a prepared statement).
//
// # Errors
//
// A missing token is [apitoken.ErrNotFound]; a write the contract refuses
// (a taken ID or hash, a stale version) is [apitoken.ErrConflict]; a full
// owner is [apitoken.ErrTooManyTokens]. Anything else — the database down,
// a closed *sql.DB, a row that cannot be decoded — is returned wrapped
// with the operation, and the Validator reports it as
// [apitoken.ErrStoreUnavailable]. A row that cannot be decoded is an error
// naming its token's ID; other tokens are unaffected.
//
// # Security
//
// The store keeps only hashes of tokens (and, for recoverable tokens, the
// secret sealed by the Issuer), never a plaintext token. Error messages
// never contain a hash, a secret or a DSN.
package sqlstore
