package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/apitoken/apitoken"
)

var _ apitoken.PolicyRecorder = (*Store)(nil)

// policyQueries are the statements of RecordPolicy on the policy table.
type policyQueries struct {
	read, readLocked, insert, update string
}

func buildPolicyQueries(d Dialect, table string) policyQueries {
	q := policyQueries{
		read:   "SELECT prefix, fingerprint FROM " + table + " WHERE id = 1",
		insert: "INSERT INTO " + table + " (id, prefix, fingerprint) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
		update: "UPDATE " + table + " SET fingerprint = $2 WHERE id = 1 AND prefix = $1",
	}
	q.readLocked = q.read
	if d == Postgres {
		q.readLocked += " FOR UPDATE"
	}
	q.insert, q.update = bind(d, q.insert), bind(d, q.update)
	return q
}

// RecordPolicy implements [apitoken.PolicyRecorder] on the one row of the
// policy table (schema version 3). When the row already holds id, or id is
// zero, it is one read. Otherwise it is one transaction that holds the
// row's lock (PostgreSQL: the insert's conflict, then SELECT … FOR UPDATE;
// SQLite: BEGIN IMMEDIATE): it inserts the row if there is none, or else
// replaces the fingerprint when the prefix is the same.
func (s *Store) RecordPolicy(ctx context.Context, id apitoken.PolicyID) (apitoken.PolicyID, error) {
	if err := s.ready(ctx); err != nil {
		return apitoken.PolicyID{}, err
	}
	held, err := s.readPolicy(ctx, s.db, s.pq.read)
	if err != nil || id.IsZero() || held == id {
		return held, wrap("record policy", err)
	}
	record := func(q querier) error {
		res, err := q.ExecContext(ctx, s.pq.insert, id.Prefix, id.Fingerprint)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			held = id
			return err
		}
		if held, err = s.readPolicy(ctx, q, s.pq.readLocked); err != nil {
			return err
		}
		if held.Prefix == id.Prefix && held.Fingerprint != id.Fingerprint {
			_, err = q.ExecContext(ctx, s.pq.update, id.Prefix, id.Fingerprint)
		}
		return err
	}
	if s.dialect == Postgres {
		err = s.inTx(ctx, func(tx *sql.Tx) error { return record(tx) })
	} else {
		err = s.sqliteImmediate(ctx, func(c *sql.Conn) error { return record(c) })
	}
	if err != nil {
		return apitoken.PolicyID{}, wrap("record policy", err)
	}
	return held, nil
}

// readPolicy reads the policy row with query: the zero PolicyID if there
// is none.
func (s *Store) readPolicy(ctx context.Context, q querier, query string) (apitoken.PolicyID, error) {
	var id apitoken.PolicyID
	err := q.QueryRowContext(ctx, query).Scan(&id.Prefix, &id.Fingerprint)
	if errors.Is(err, sql.ErrNoRows) {
		return apitoken.PolicyID{}, nil
	}
	return id, err
}
