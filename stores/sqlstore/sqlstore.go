package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/apitoken/apitoken"
)

// Dialect is the SQL database a [Store] talks to.
type Dialect uint8

// The supported dialects.
const (
	// SQLite is SQLite 3. Package sqlstore/sqlite opens it through
	// modernc.org/sqlite (pure Go, no cgo) with the settings the store
	// relies on.
	SQLite Dialect = 1
	// Postgres is PostgreSQL 12 or later. Package sqlstore/postgres opens
	// it through the pgx driver.
	Postgres Dialect = 2
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return fmt.Sprintf("Dialect(%d)", uint8(d))
}

// DefaultTablePrefix starts the name of every table and index the store
// creates, unless [WithTablePrefix] says otherwise.
const DefaultTablePrefix = "apitoken_"

// Errors of the schema. A Store's first call, and every call until one
// finds the schema current, returns an error matching one of them when the
// database is not at [SchemaVersion]; [Store.CheckSchema] reports them
// without doing anything else, and [Store.Migrate] refuses a newer schema
// with ErrSchemaTooNew. Match them with errors.Is; the text adds the
// versions.
var (
	// ErrNotMigrated means the database has none of the store's tables:
	// nobody has run [Store.Migrate] on it (with this table prefix and
	// schema).
	ErrNotMigrated = errors.New("sqlstore: database has no apitoken schema: call Store.Migrate first (for SQLite, or open it with sqlite.WithMigrate)")
	// ErrSchemaOutdated means the database schema is older than
	// [SchemaVersion]: an older release migrated it. Call [Store.Migrate].
	ErrSchemaOutdated = errors.New("sqlstore: database schema is older than this program: call Store.Migrate")
	// ErrSchemaTooNew means the database schema is newer than
	// [SchemaVersion]: a newer release migrated it. Upgrade the program;
	// Migrate does not downgrade.
	ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this program: upgrade the program")
)

// Option configures [New].
type Option func(*options)

type options struct {
	prefix  string
	schema  string
	closeDB bool
}

// WithTablePrefix sets the prefix of every table and index name (default
// [DefaultTablePrefix], "apitoken_"), so that the store's tables can live
// beside the host's own. It must be empty or up to 32 characters of
// [a-z0-9_] starting with a letter or '_'.
func WithTablePrefix(prefix string) Option {
	return func(o *options) { o.prefix = prefix }
}

// WithSchema puts the tables in the named PostgreSQL schema, which Migrate
// creates if needed (default: none, so the connection's search_path
// decides). The name must be 1 to 63 characters of [a-z0-9_] starting with
// a letter or '_'. SQLite has no schemas: New fails with this option.
func WithSchema(schema string) Option {
	return func(o *options) { o.schema = schema }
}

// WithCloseDB makes [Store.Close] close the *sql.DB too, for a store that
// is its database's only user (package sqlstore/sqlite's Open sets it).
func WithCloseDB() Option {
	return func(o *options) { o.closeDB = true }
}

var (
	prefixRE = regexp.MustCompile(`^([a-z_][a-z0-9_]{0,31})?$`)
	schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// Store is an [apitoken.Store] on a database/sql database, SQLite or
// PostgreSQL. Use [New]; the zero value is not usable. A Store is safe for
// concurrent use. Unless made with [WithCloseDB], it does not own the
// *sql.DB: close the database after the last use of the store (and after
// [Store.Close]).
type Store struct {
	db      *sql.DB
	dialect Dialect
	schema  string // "" or the PostgreSQL schema
	prefix  string
	closeDB bool
	q       queries
	pq      policyQueries
	closed  atomic.Bool
	stmts   [numStmts]lazyStmt
	// current is set once a call found the schema at SchemaVersion;
	// checkMu makes concurrent first calls check once.
	current atomic.Bool
	checkMu sync.Mutex
	// migrateKey and pruneKey are the PostgreSQL advisory lock keys
	// Migrate and a Prune batch hold.
	migrateKey, pruneKey int64
}

var _ apitoken.Store = (*Store)(nil)

// New returns a Store that keeps tokens in db, which must be a database of
// the given dialect, opened with the settings the store relies on: use
// sqlite.OpenDB or postgres.OpenDB (packages sqlstore/sqlite and
// sqlstore/postgres, one per driver). It takes the options
// [WithTablePrefix], [WithSchema] and [WithCloseDB]. A nil db, an unknown
// dialect or an invalid option is an error.
//
// New does no I/O. Run [Store.Migrate] once (at deployment or at start-up)
// before using the store: until the database holds the current schema,
// every call fails with an error matching [ErrNotMigrated],
// [ErrSchemaOutdated] or [ErrSchemaTooNew].
func New(db *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: nil *sql.DB")
	}
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("sqlstore: New: unknown dialect %v", dialect)
	}
	o := options{prefix: DefaultTablePrefix}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("sqlstore: New: nil Option")
		}
		opt(&o)
	}
	if !prefixRE.MatchString(o.prefix) {
		return nil, fmt.Errorf("sqlstore: WithTablePrefix(%q): want up to 32 of [a-z0-9_], starting with a letter or '_'", o.prefix)
	}
	if o.schema != "" {
		if dialect != Postgres {
			return nil, errors.New("sqlstore: WithSchema is for PostgreSQL only")
		}
		if !schemaRE.MatchString(o.schema) {
			return nil, fmt.Errorf("sqlstore: WithSchema(%q): want 1 to 63 of [a-z0-9_], starting with a letter or '_'", o.schema)
		}
	}
	s := &Store{db: db, dialect: dialect, schema: o.schema, prefix: o.prefix, closeDB: o.closeDB}
	s.q = buildQueries(dialect, s.table("tokens"), s.table("hashes"), s.table("migrations"))
	s.pq = buildPolicyQueries(dialect, s.table("policy"))
	s.migrateKey = lockKey("migrate", o.schema)
	s.pruneKey = lockKey("prune", o.schema, o.prefix)
	return s, nil
}

// table returns the qualified, quoted name of one of the store's tables.
func (s *Store) table(name string) string {
	t := `"` + s.prefix + name + `"`
	if s.schema != "" {
		return `"` + s.schema + `".` + t
	}
	return t
}

// lockKey returns a PostgreSQL advisory lock key for the parts, a 64-bit
// FNV-1a hash under a fixed namespace.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	h.Write([]byte("github.com/apitoken/apitoken/stores/sqlstore"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return int64(h.Sum64())
}

// Dialect returns the store's dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close releases the statements the store prepared on the database and
// makes later calls fail with [apitoken.ErrClosed]. It closes the *sql.DB
// only if the store was made with [WithCloseDB]. It is idempotent.
func (s *Store) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	for i := range s.stmts {
		l := &s.stmts[i]
		l.mu.Lock()
		if st := l.p.Swap(nil); st != nil {
			errs = append(errs, st.Close())
		}
		l.mu.Unlock()
	}
	if s.closeDB {
		errs = append(errs, s.db.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// String describes the store without its database's address.
func (s *Store) String() string {
	return fmt.Sprintf("sqlstore.Store(%s, tables %s)", s.dialect, s.table("*"))
}

// ready returns nil if the store is open and its database holds the
// current schema, else [apitoken.ErrClosed] or the schema's error. The
// schema is read on the first call and on each call after a failed check,
// never again once it was current.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return apitoken.ErrClosed
	}
	if s.current.Load() {
		return nil
	}
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if s.current.Load() {
		return nil
	}
	if err := s.CheckSchema(ctx); err != nil {
		return err
	}
	s.current.Store(true)
	return nil
}

// lazyStmt is a statement prepared on first use, and again after a failed
// attempt, so a store made while the database is down starts working when
// it comes up.
type lazyStmt struct {
	mu sync.Mutex
	p  atomic.Pointer[sql.Stmt]
}

// stmt returns the prepared statement i of s.q.stmts.
func (s *Store) stmt(ctx context.Context, i int) (*sql.Stmt, error) {
	l := &s.stmts[i]
	if st := l.p.Load(); st != nil {
		return st, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.closed.Load() {
		return nil, apitoken.ErrClosed
	}
	if st := l.p.Load(); st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.q.stmts[i])
	if err != nil {
		return nil, err
	}
	l.p.Store(st)
	return st, nil
}
