package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenDB opens a PostgreSQL database through the pgx driver and checks that
// it answers. dsn is a libpq connection string or URL
// ("postgres://user:pass@host/db?sslmode=…"). Errors never repeat the DSN.
// The pool keeps up to 16 idle connections; tune it with the *sql.DB's
// methods. The caller closes the database.
func OpenDB(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parser's message quotes the DSN (password masked): leave
		// it out.
		return nil, errors.New("postgres: open: malformed DSN")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return db, nil
}
