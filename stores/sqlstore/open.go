package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// OpenPostgres opens a PostgreSQL database through the pgx driver
// (database/sql name "pgx") and checks that it answers. dsn is a libpq
// connection string or URL ("postgres://user:pass@host/db?sslmode=…").
// Errors never repeat the DSN. The pool keeps up to 16 idle connections;
// tune it with the *sql.DB's methods. The caller closes the database.
func OpenPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parser's message quotes the DSN (password masked): leave
		// it out.
		return nil, errors.New("sqlstore: open postgres: malformed DSN")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, wrap("open postgres", err)
	}
	return db, nil
}
