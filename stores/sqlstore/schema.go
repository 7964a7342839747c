package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the schema this package reads and
// writes: the number of its migrations. [Store.Migrate] brings a database up
// to it.
const SchemaVersion = 3

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns the dialect's migrations, version 1 first, with the
// table names of s filled in.
func (s *Store) migrations() ([]migration, error) {
	dir := path.Join("migrations", s.dialect.String())
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	schema := ""
	if s.schema != "" {
		schema = `"` + s.schema + `".`
	}
	fill := strings.NewReplacer("{{schema}}", schema, "{{prefix}}", s.prefix)
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != len(out)+1 {
			return nil, fmt.Errorf("embedded migration %s is out of sequence", name)
		}
		b, err := migrationFS.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: rest, stmts: splitSQL(fill.Replace(string(b)))})
	}
	if len(out) != SchemaVersion {
		return nil, fmt.Errorf("%d embedded migrations, want %d", len(out), SchemaVersion)
	}
	return out, nil
}

// splitSQL splits a migration into statements: it drops "--" comment lines
// and splits at semicolons that end a line.
func splitSQL(src string) []string {
	var lines []string
	for line := range strings.Lines(src) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			lines = append(lines, line)
		}
	}
	var out []string
	for stmt := range strings.SplitSeq(strings.Join(lines, ""), ";\n") {
		if stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

// Migrate creates or upgrades the store's tables to [SchemaVersion]. It is
// idempotent: on an up-to-date database it changes nothing. All pending
// migrations are applied in one transaction, together with their rows in
// the migrations table, so a failure leaves the schema as it was. Several
// processes may call Migrate at once (replicas starting together): on
// PostgreSQL they queue on an advisory lock (one per schema), on SQLite on
// the database's write lock (BEGIN IMMEDIATE, waiting up to the busy
// timeout); the first applies the migrations and the others then find
// nothing to do. A database migrated by a newer program is refused with an
// error matching [ErrSchemaTooNew], and nothing is changed.
//
// The store never migrates by itself: call Migrate at start-up or from a
// deployment step (for SQLite, sqlite.Open's WithMigrate calls it).
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrateTo(ctx, SchemaVersion); err != nil {
		return err
	}
	s.current.Store(true)
	return nil
}

// migrateTo is Migrate up to version (tests build older schemas with it).
func (s *Store) migrateTo(ctx context.Context, version int) error {
	ms, err := s.migrations()
	if err != nil {
		return wrap("migrate", err)
	}
	if version < 0 || version > len(ms) {
		return fmt.Errorf("sqlstore: migrate: no schema version %d", version)
	}
	ms = ms[:version]
	if s.dialect == Postgres {
		return wrap("migrate", s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", s.migrateKey); err != nil {
				return err
			}
			if s.schema != "" {
				if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+s.schema+`"`); err != nil {
					return err
				}
			}
			return s.apply(ctx, tx, ms,
				"CREATE TABLE IF NOT EXISTS "+s.q.migrations+" (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)")
		}))
	}
	return wrap("migrate", s.sqliteImmediate(ctx, func(c *sql.Conn) error {
		return s.apply(ctx, c, ms,
			"CREATE TABLE IF NOT EXISTS "+s.q.migrations+" (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT")
	}))
}

type querier interface {
	execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// apply runs, inside the caller's transaction, the migrations the
// database lacks.
func (s *Store) apply(ctx context.Context, q querier, ms []migration, createTable string) error {
	if _, err := q.ExecContext(ctx, createTable); err != nil {
		return err
	}
	var current int
	if err := q.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM "+s.q.migrations).Scan(&current); err != nil {
		return err
	}
	if current > len(ms) {
		if current > SchemaVersion {
			return schemaErr(current)
		}
		return fmt.Errorf("database at version %d, past the %d asked for", current, len(ms))
	}
	for _, m := range ms[current:] {
		for _, stmt := range m.stmts {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := q.ExecContext(ctx, bind(s.dialect, "INSERT INTO "+s.q.migrations+" (version, name, applied_at) VALUES ($1, $2, $3)"),
			m.version, m.name, s.instant(time.Now())); err != nil {
			return err
		}
	}
	return nil
}

func schemaErr(v int) error {
	switch {
	case v == 0:
		return ErrNotMigrated
	case v > SchemaVersion:
		return fmt.Errorf("%w (database at version %d, this program knows up to %d)", ErrSchemaTooNew, v, SchemaVersion)
	case v < SchemaVersion:
		return fmt.Errorf("%w (database at version %d, this program needs %d)", ErrSchemaOutdated, v, SchemaVersion)
	}
	return nil
}

// sqliteImmediate runs f on one connection inside BEGIN IMMEDIATE … COMMIT,
// so the write lock is taken (or waited for) before anything is read.
func (s *Store) sqliteImmediate(ctx context.Context, f func(c *sql.Conn) error) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	err = f(c)
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		if _, rerr := c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			// The connection's state is unknown: drop it from the pool.
			c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	return err
}

// Version returns the schema version recorded in the database: 0 before
// the first [Store.Migrate].
func (s *Store) Version(ctx context.Context) (int, error) {
	var present bool
	var err error
	if s.dialect == Postgres {
		var reg sql.NullString
		err = s.db.QueryRowContext(ctx, "SELECT to_regclass($1)::text", s.q.migrations).Scan(&reg)
		present = reg.Valid
	} else {
		var n int
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", s.prefix+"migrations").Scan(&n)
		present = n > 0
	}
	if err != nil || !present {
		return 0, wrap("schema version", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM "+s.q.migrations).Scan(&v); err != nil {
		return 0, wrap("schema version", err)
	}
	return v, nil
}

// CheckSchema reports whether the database's schema is the one this
// program uses: nil if so, an error matching [ErrNotMigrated] if the
// database has none of the store's tables, [ErrSchemaOutdated] if an older
// program migrated it, [ErrSchemaTooNew] if a newer one did, or the
// database's error. It changes nothing. Replicas that leave migrating to a
// deployment step can call it at start-up to fail early rather than on
// their first request.
func (s *Store) CheckSchema(ctx context.Context) error {
	v, err := s.Version(ctx)
	if err != nil {
		return err
	}
	return schemaErr(v)
}
