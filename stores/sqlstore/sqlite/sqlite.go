package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/apitoken/apitoken/stores/sqlstore"
)

// BusyTimeout is how long a connection opened by [OpenDB] waits for another
// connection's write lock before failing with SQLITE_BUSY. SQLite's waiters
// poll rather than queue, so under slow fsyncs one writer can lose the
// lock for seconds in a row: 5 s let one write in 8,000 fail on a loaded
// 2-core machine (TestNoBusyErrorsUnderContention); a request's context
// still ends a wait earlier.
const BusyTimeout = 15 * time.Second

// OpenDB opens (creating if needed) the SQLite database file at path with
// the settings [sqlstore.Store] relies on, and checks that they took effect:
// WAL journal mode, synchronous=FULL, busy_timeout [BusyTimeout], foreign
// keys on, and transactions that begin IMMEDIATE. path must be a file name,
// not ":memory:" or a "file:" URI. The caller closes the database.
func OpenDB(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, errors.New(`sqlite: open: path must be a file name without "?" or "#" (not ":memory:" or a URI)`)
	}
	busy := strconv.FormatInt(BusyTimeout.Milliseconds(), 10)
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout("+busy+")&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxIdleConns(16)
	if err := checkPragmas(ctx, db, map[string]string{
		"journal_mode": "wal", "synchronous": "2", "busy_timeout": busy, "foreign_keys": "1",
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return db, nil
}

func checkPragmas(ctx context.Context, db *sql.DB, want map[string]string) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, name := range []string{"journal_mode", "synchronous", "busy_timeout", "foreign_keys"} {
		var got string
		if err := c.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil {
			return err
		}
		if !strings.EqualFold(got, want[name]) {
			return fmt.Errorf("PRAGMA %s is %q, want %q", name, got, want[name])
		}
	}
	return nil
}

// Option configures [Open].
type Option func(*config)

type config struct {
	migrate bool
	store   []sqlstore.Option
}

// WithMigrate makes [Open] run [sqlstore.Store.Migrate] before it returns,
// creating or upgrading the tables. Without it, Open fails on a database
// that is not at [sqlstore.SchemaVersion].
func WithMigrate() Option {
	return func(c *config) { c.migrate = true }
}

// WithStoreOptions passes opts (such as [sqlstore.WithTablePrefix]) to
// [sqlstore.New]. Later calls add to the earlier ones.
func WithStoreOptions(opts ...sqlstore.Option) Option {
	return func(c *config) { c.store = append(c.store, opts...) }
}

// Open opens the SQLite database file at path as [OpenDB] does and returns a
// store on it that owns it: the store's Close closes the database. With
// [WithMigrate] it migrates the schema first; without it, it checks the
// schema and fails with an error matching [sqlstore.ErrNotMigrated],
// [sqlstore.ErrSchemaOutdated] or [sqlstore.ErrSchemaTooNew] if the database
// is not current. On error nothing stays open.
func Open(ctx context.Context, path string, opts ...Option) (*sqlstore.Store, error) {
	var c config
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("sqlite: open: nil Option")
		}
		opt(&c)
	}
	db, err := OpenDB(ctx, path)
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.New(db, sqlstore.SQLite, append(c.store, sqlstore.WithCloseDB())...)
	if err != nil {
		db.Close()
		return nil, err
	}
	if c.migrate {
		err = s.Migrate(ctx)
	} else {
		err = s.CheckSchema(ctx)
	}
	if err != nil {
		s.Close(ctx)
		return nil, err
	}
	return s, nil
}
