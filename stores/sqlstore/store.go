package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
)

// The store classifies driver errors by these methods, not by the drivers'
// types, so that it imports no driver: pgx's *pgconn.PgError (and lib/pq's
// *pq.Error) report a SQLSTATE, modernc.org/sqlite's *sqlite.Error an
// extended result code.
type (
	sqlStater interface {
		error
		SQLState() string
	}
	sqliteCoder interface {
		error
		Code() int
	}
)

// SQLite extended result codes (sqlite3.h).
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	if pe, ok := errors.AsType[sqlStater](err); ok {
		return pe.SQLState() == "23505"
	}
	if se, ok := errors.AsType[sqliteCoder](err); ok {
		return se.Code() == sqliteConstraintPrimaryKey || se.Code() == sqliteConstraintUnique
	}
	return false
}

// isDeadlock reports whether err is a PostgreSQL deadlock, after which the
// statement can be retried.
func isDeadlock(err error) bool {
	pe, ok := errors.AsType[sqlStater](err)
	return ok && pe.SQLState() == "40P01"
}

// wrap adds the operation to an infrastructure error, or returns nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// inTx runs f in a transaction. PostgreSQL transactions are READ COMMITTED
// whatever the server's default, so each statement sees what committed
// before it started (the per-owner bound relies on it). SQLite write
// transactions start with a write, so they take the write lock first and
// wait busy_timeout for it instead of failing on a stale snapshot.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Create implements [apitoken.Store]. The token row and its hashes are
// written in one transaction (one statement on PostgreSQL). With
// maxPerOwner > 0, PostgreSQL serializes the Creates of one owner with a
// transaction-scoped advisory lock and inserts only if the count of live
// tokens, taken in the same statement, is below the bound; SQLite holds
// the database's write lock for the whole transaction.
func (s *Store) Create(ctx context.Context, t *apitoken.Token, maxPerOwner int) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if t == nil || t.ID == "" || t.Hash.IsZero() {
		return errors.New("sqlstore: create: token needs an ID and a hash")
	}
	if t.Hash == t.PrevHash {
		return fmt.Errorf("sqlstore: create %s: %w: Hash equals PrevHash", t.ID, apitoken.ErrConflict)
	}
	args, err := s.tokenArgs(t)
	if err != nil {
		return wrap("create", err)
	}
	hashes := [][]byte{t.Hash[:]}
	if !t.PrevHash.IsZero() {
		hashes = append(hashes, t.PrevHash[:])
	}
	tooMany := false
	switch {
	case s.dialect == Postgres && maxPerOwner <= 0:
		_, err = s.db.ExecContext(ctx, s.q.insert, append(args, hashes)...)
	case s.dialect == Postgres:
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("owner", s.schema, s.prefix, strconv.Itoa(int(t.Kind)), t.OwnerID)); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, s.q.insertBounded, append(args, hashes, int64(maxPerOwner))...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err == nil && n == 0 {
				tooMany = true
				return apitoken.ErrTooManyTokens
			}
			return err
		})
	default:
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.q.insert, args...); err != nil {
				return err
			}
			for _, h := range hashes {
				if _, err := tx.ExecContext(ctx, s.q.insertHashes, h, t.ID); err != nil {
					return err
				}
			}
			if maxPerOwner <= 0 {
				return nil
			}
			var live int
			if err := tx.QueryRowContext(ctx, s.q.countLive, t.OwnerID, t.ID, s.instant(t.CreatedAt), int64(t.Kind)).Scan(&live); err != nil {
				return err
			}
			if live >= maxPerOwner {
				tooMany = true
				return apitoken.ErrTooManyTokens
			}
			return nil
		})
	}
	switch {
	case err == nil:
		return nil
	case tooMany:
		return fmt.Errorf("sqlstore: create %s: %w", t.ID, apitoken.ErrTooManyTokens)
	case isUnique(err):
		return fmt.Errorf("sqlstore: create %s: %w: ID or hash taken", t.ID, apitoken.ErrConflict)
	}
	return wrap("create "+t.ID, err)
}

// Get implements [apitoken.Store].
func (s *Store) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	st, err := s.stmt(ctx, stmtGet)
	if err != nil {
		return nil, wrap("get", err)
	}
	t, err := scanToken(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: get %s: %w", id, apitoken.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("get", err)
	}
	return t, nil
}

// GetByHash implements [apitoken.Store]: one query, a primary key lookup in
// the hashes table joined to the token's row. The result is the caller's.
func (s *Store) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	if h.IsZero() {
		return nil, apitoken.ErrNotFound
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	st, err := s.stmt(ctx, stmtGetByHash)
	if err != nil {
		return nil, wrap("get by hash", err)
	}
	t, err := scanToken(st.QueryRowContext(ctx, h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apitoken.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get by hash", err)
	}
	return t, nil
}

// Update implements [apitoken.Store]: in one transaction, the row is
// replaced if its version matches (last_used_at only moves forwards), and
// the token's entries in the hashes table are rewritten.
func (s *Store) Update(ctx context.Context, t *apitoken.Token) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if t.Hash.IsZero() || t.Hash == t.PrevHash {
		return fmt.Errorf("sqlstore: update %s: %w: hash in use", t.ID, apitoken.ErrConflict)
	}
	args, err := s.tokenArgs(t)
	if err != nil {
		return wrap("update", err)
	}
	var missing, stale bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.update, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var v int64
			switch err := tx.QueryRowContext(ctx, s.q.version, t.ID).Scan(&v); {
			case errors.Is(err, sql.ErrNoRows):
				missing = true
				return apitoken.ErrNotFound
			case err != nil:
				return err
			}
			stale = true
			return apitoken.ErrConflict
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteHashes, t.ID); err != nil {
			return err
		}
		return s.insertHashes(ctx, tx, t)
	})
	switch {
	case err == nil:
		t.Version++
		return nil
	case missing:
		return fmt.Errorf("sqlstore: update %s: %w", t.ID, apitoken.ErrNotFound)
	case stale:
		return fmt.Errorf("sqlstore: update %s: %w: version %d is not the stored one", t.ID, apitoken.ErrConflict, t.Version)
	case isUnique(err):
		return fmt.Errorf("sqlstore: update %s: %w: hash in use", t.ID, apitoken.ErrConflict)
	}
	return wrap("update "+t.ID, err)
}

// insertHashes adds t's Hash and nonzero PrevHash to the hashes table.
func (s *Store) insertHashes(ctx context.Context, tx *sql.Tx, t *apitoken.Token) error {
	if s.dialect == Postgres {
		hashes := [][]byte{t.Hash[:]}
		if !t.PrevHash.IsZero() {
			hashes = append(hashes, t.PrevHash[:])
		}
		_, err := tx.ExecContext(ctx, s.q.insertHashes, t.ID, hashes)
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q.insertHashes, t.Hash[:], t.ID); err != nil {
		return err
	}
	if !t.PrevHash.IsZero() {
		if _, err := tx.ExecContext(ctx, s.q.insertHashes, t.PrevHash[:], t.ID); err != nil {
			return err
		}
	}
	return nil
}

// Revoke implements [apitoken.Store] with one UPDATE of a token not yet
// revoked (and a lookup when it changed nothing, to tell a revoked token
// from a missing one).
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q.revoke, id, s.timeArg(at), s.instant(at))
	if err != nil {
		return wrap("revoke "+id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap("revoke "+id, err)
	}
	if n > 0 {
		return nil
	}
	var one int
	switch err := s.db.QueryRowContext(ctx, s.q.exists, id).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: revoke %s: %w", id, apitoken.ErrNotFound)
	case err != nil:
		return wrap("revoke "+id, err)
	}
	return nil // already revoked
}

// RevokeAll implements [apitoken.Store] with one UPDATE statement of the
// rows whose kind and owner_id are owner's.
func (s *Store) RevokeAll(ctx context.Context, owner apitoken.Owner, at time.Time) (int, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, s.q.revokeAll, owner.ID, s.timeArg(at), s.instant(at), int64(owner.Kind))
	if err != nil {
		return 0, wrap("revoke all", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("revoke all", err)
	}
	return int(n), nil
}

// Delete implements [apitoken.Store].
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	var n int64
	exec := func(ctx context.Context, q execer) error {
		res, err := q.ExecContext(ctx, s.q.deleteToken, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	}
	var err error
	if s.dialect == Postgres {
		err = exec(ctx, s.db) // the hashes go by ON DELETE CASCADE
	} else {
		// SQLite enforces foreign keys only when a connection asks for
		// them, so the hashes are deleted explicitly, first (a write
		// takes the write lock).
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.q.deleteHashes, id); err != nil {
				return err
			}
			return exec(ctx, tx)
		})
	}
	if err != nil {
		return wrap("delete "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: delete %s: %w", id, apitoken.ErrNotFound)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// List implements [apitoken.Store]: one indexed query in ID order, from the
// cursor's ID on.
func (s *Store) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	if err := s.ready(ctx); err != nil {
		return apitoken.Page{}, err
	}
	after := ""
	if f.Cursor != "" {
		var err error
		if after, err = apitoken.DecodeCursor(f.Cursor); err != nil {
			return apitoken.Page{}, fmt.Errorf("sqlstore: list: %w", err)
		}
	}
	size := f.PageSize()
	b := builder{d: s.dialect}
	b.write("SELECT ", columns, " FROM ", s.q.tokens, " WHERE id > ", b.arg(after))
	if !f.Owner.IsZero() {
		b.write(" AND kind = ", b.arg(int64(f.Owner.Kind)), " AND owner_id = ", b.arg(f.Owner.ID))
	}
	if f.OrgID != "" {
		b.write(" AND org_id = ", b.arg(f.OrgID))
	}
	if f.Kind != 0 {
		b.write(" AND kind = ", b.arg(int64(f.Kind)))
	}
	b.write(" ORDER BY id LIMIT ", b.arg(int64(size+1)))
	rows, err := s.db.QueryContext(ctx, b.sql.String(), b.args...)
	if err != nil {
		return apitoken.Page{}, wrap("list", err)
	}
	defer rows.Close()
	var p apitoken.Page
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return apitoken.Page{}, wrap("list", err)
		}
		p.Tokens = append(p.Tokens, t)
	}
	if err := rows.Err(); err != nil {
		return apitoken.Page{}, wrap("list", err)
	}
	if len(p.Tokens) > size {
		p.Tokens = p.Tokens[:size]
		p.Next = apitoken.EncodeCursor(p.Tokens[size-1].ID)
	}
	return p, nil
}

// Touch implements [apitoken.Store]. The batch is reduced to the latest use
// of each token, in ID order; then PostgreSQL runs one UPDATE joined to
// unnest of the IDs and instants, and SQLite one prepared UPDATE per token
// in one transaction. Either way a row changes only if its last_used_at is
// earlier, so flushes from several replicas, in any order, never move it
// backwards.
func (s *Store) Touch(ctx context.Context, uses []apitoken.Use) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	latest := latestUses(uses)
	if len(latest) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		ids := make([]string, len(latest))
		ats := make([]time.Time, len(latest))
		for i, u := range latest {
			ids[i], ats[i] = u.ID, u.At.UTC().Truncate(time.Microsecond)
		}
		var err error
		// Rows are locked in ID order, but the plan decides; two
		// overlapping flushes that deadlock are retried.
		for range 3 {
			if _, err = s.db.ExecContext(ctx, s.q.touch, ids, ats); !isDeadlock(err) {
				break
			}
		}
		return wrap("touch", err)
	}
	return wrap("touch", s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, s.q.touch)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, u := range latest {
			if _, err := st.ExecContext(ctx, u.ID, u.At.UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	}))
}

// latestUses returns the latest nonzero use of each token in uses, sorted
// by ID.
func latestUses(uses []apitoken.Use) []apitoken.Use {
	out := make([]apitoken.Use, 0, len(uses))
	for _, u := range uses {
		if !u.At.IsZero() {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b apitoken.Use) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return b.At.Compare(a.At) // latest first
	})
	return slices.CompactFunc(out, func(a, b apitoken.Use) bool { return a.ID == b.ID })
}

// Prune implements [apitoken.Store]. PostgreSQL picks up to r.Limit
// matching rows with FOR UPDATE SKIP LOCKED and deletes them in the same
// statement, re-checking the criteria; the hashes go by ON DELETE CASCADE.
// The batches of pruners running at once take turns on an advisory lock
// (one per schema and table prefix), and never wait on writers; the price
// is that a short batch may leave matching rows another transaction held
// at that moment, for the next run. SQLite
// deletes under its write lock, in one transaction.
func (s *Store) Prune(ctx context.Context, r apitoken.PruneRequest) (int, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	if r.Limit <= 0 {
		return 0, errors.New("sqlstore: prune: limit must be positive")
	}
	b := builder{d: s.dialect}
	var conds []string
	if !r.IdleBefore.IsZero() {
		conds = append(conds, s.q.activeExpr+" < "+b.arg(s.before(r.IdleBefore)))
	}
	if !r.EndedBefore.IsZero() {
		p := b.arg(s.before(r.EndedBefore))
		conds = append(conds, "expires_at < "+p+" OR revoked_at < "+p)
	}
	if len(conds) == 0 {
		return 0, nil
	}
	cond := "(" + strings.Join(conds, " OR ") + ")"
	limit := b.arg(int64(r.Limit))

	if s.dialect == Postgres {
		b.write("WITH v AS (SELECT id FROM ", s.q.tokens, " WHERE ", cond, " LIMIT ", limit, " FOR UPDATE SKIP LOCKED) ",
			"DELETE FROM ", s.q.tokens, " AS t USING v WHERE t.id = v.id AND ", cond)
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			// Batches take turns: run at once, each rescans the index
			// entries of the rows the others just deleted, which none can
			// mark dead while the others run (4 pruners over 100,000 idle
			// tokens: batches up to 0.9 s, validation p99 ×4 to ×10).
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", s.pruneKey); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, b.sql.String(), b.args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return 0, wrap("prune", err)
		}
		return int(n), nil
	}

	b.write("DELETE FROM ", s.q.tokens, " WHERE id IN (SELECT id FROM ", s.q.tokens, " WHERE ", cond, " LIMIT ", limit, ") RETURNING id")
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, b.sql.String(), b.args...)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// The hashes of the deleted tokens (a no-op when the connection
		// enforces the foreign key's ON DELETE CASCADE).
		for chunk := range slices.Chunk(ids, 500) {
			q := "DELETE FROM " + s.q.hashes + " WHERE token_id IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")"
			if _, err := tx.ExecContext(ctx, q, chunk...); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, wrap("prune", err)
	}
	return n, nil
}
