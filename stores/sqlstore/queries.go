package sqlstore

import (
	"regexp"
	"strconv"
	"strings"
)

// columns are the tokens table's columns, in the order of tokenArgs and
// scanToken.
const columns = "id, kind, owner_id, org_id, name, description, hint, hash, prev_hash, prev_expires_at, sealed, " +
	"created_at, updated_at, expires_at, last_used_at, revoked_at, version, rate_limit_rate, rate_limit_burst, attrs, issued_at"

const numColumns = 21

// Indexes of the statements the store prepares once (the hot path).
const (
	stmtGetByHash = iota
	stmtGet
	numStmts
)

// queries holds the SQL text of every statement, for one dialect and one
// set of table names. Placeholders are $1, $2, … in PostgreSQL and ?1, ?2,
// … in SQLite (numbered, so a parameter can be used twice).
type queries struct {
	stmts [numStmts]string

	tokens, hashes, migrations string // qualified, quoted table names

	insert        string // token row, no per-owner bound
	insertBounded string // PostgreSQL: token row and hashes if the owner ($2, $3) has fewer than $23 live tokens
	insertHashes  string // PostgreSQL: $2::bytea[] for token $1; SQLite: one hash ?1 for token ?2
	countLive     string // SQLite: live tokens of owner (kind ?4, ID ?1) at ?3, other than ?2
	update        string
	version       string
	deleteHashes  string
	revoke        string
	exists        string
	revokeAll     string
	deleteToken   string
	touch         string
	activeExpr    string // the instant idleness counts from, as the index has it
}

// placeholderRE matches a $N placeholder.
var placeholderRE = regexp.MustCompile(`\$([0-9]+)`)

// bind rewrites the $N placeholders of q for the dialect.
func bind(d Dialect, q string) string {
	if d == SQLite {
		return placeholderRE.ReplaceAllString(q, "?$1")
	}
	return q
}

// placeholders returns "$from, $from+1, …" for n parameters, each followed by
// the matching cast when casts is not nil.
func placeholders(from, n int, casts []string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
		if casts != nil {
			b.WriteString("::" + casts[i])
		}
	}
	return b.String()
}

// pgTypes are the PostgreSQL types of the columns, for casts of parameters
// whose type PostgreSQL cannot infer.
var pgTypes = []string{"text", "smallint", "text", "text", "text", "text", "text", "bytea", "bytea", "timestamptz", "bytea",
	"timestamptz", "timestamptz", "timestamptz", "timestamptz", "timestamptz", "bigint", "double precision", "bigint", "jsonb", "timestamptz"}

func buildQueries(d Dialect, tokens, hashes, migrations string) queries {
	q := queries{tokens: tokens, hashes: hashes, migrations: migrations}
	prefixed := "t." + strings.ReplaceAll(columns, ", ", ", t.")
	q.stmts[stmtGet] = "SELECT " + columns + " FROM " + tokens + " WHERE id = $1"
	q.stmts[stmtGetByHash] = "SELECT " + prefixed + " FROM " + hashes + " h JOIN " + tokens + " t ON t.id = h.token_id WHERE h.hash = $1"
	q.insert = "INSERT INTO " + tokens + " (" + columns + ") VALUES (" + placeholders(1, numColumns, nil) + ")"
	q.update = "UPDATE " + tokens + " SET kind = $2, owner_id = $3, org_id = $4, name = $5, description = $6, hint = $7, " +
		"hash = $8, prev_hash = $9, prev_expires_at = $10, sealed = $11, created_at = $12, updated_at = $13, expires_at = $14, " +
		"last_used_at = LASTUSED, revoked_at = $16, version = version + 1, rate_limit_rate = $18, rate_limit_burst = $19, attrs = $20, " +
		"issued_at = $21 " +
		"WHERE id = $1 AND version = $17"
	q.version = "SELECT version FROM " + tokens + " WHERE id = $1"
	q.deleteHashes = "DELETE FROM " + hashes + " WHERE token_id = $1"
	q.revoke = "UPDATE " + tokens + " SET revoked_at = $2, updated_at = $3, version = version + 1 WHERE id = $1 AND revoked_at IS NULL"
	q.exists = "SELECT 1 FROM " + tokens + " WHERE id = $1"
	q.revokeAll = "UPDATE " + tokens + " SET revoked_at = $2, updated_at = $3, version = version + 1 WHERE kind = $4 AND owner_id = $1 AND revoked_at IS NULL"
	q.deleteToken = "DELETE FROM " + tokens + " WHERE id = $1"

	switch d {
	case Postgres:
		// One statement inserts the token and its hashes: a taken hash
		// fails the whole statement.
		q.insert = "WITH ins AS (" + q.insert + " RETURNING id) INSERT INTO " + hashes + " (hash, token_id) " +
			"SELECT x, ins.id FROM ins, unnest($22::bytea[]) AS x"
		q.insertBounded = "WITH ins AS (INSERT INTO " + tokens + " (" + columns + ") SELECT " + placeholders(1, numColumns, pgTypes) +
			" WHERE (SELECT count(*) FROM " + tokens + " WHERE kind = $2::smallint AND owner_id = $3::text AND revoked_at IS NULL" +
			" AND (expires_at IS NULL OR expires_at > $12::timestamptz)) < $23::bigint RETURNING id)" +
			" INSERT INTO " + hashes + " (hash, token_id) SELECT x, ins.id FROM ins, unnest($22::bytea[]) AS x"
		q.insertHashes = "INSERT INTO " + hashes + " (hash, token_id) SELECT x, $1 FROM unnest($2::bytea[]) AS x"
		q.update = strings.Replace(q.update, "LASTUSED", "GREATEST(last_used_at, $15)", 1)
		// unnest keeps one row per ID (the caller deduplicates), and the
		// condition keeps last_used_at monotone.
		q.touch = "UPDATE " + tokens + " AS t SET last_used_at = u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) " +
			"WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)"
		q.activeExpr = "GREATEST(last_used_at, created_at)"
	case SQLite:
		q.insertHashes = "INSERT INTO " + hashes + " (hash, token_id) VALUES ($1, $2)"
		q.countLive = "SELECT count(*) FROM " + tokens + " WHERE kind = $4 AND owner_id = $1 AND id <> $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)"
		q.update = strings.Replace(q.update, "LASTUSED", "CASE WHEN last_used_at IS NULL OR last_used_at < $15 THEN $15 ELSE last_used_at END", 1)
		q.touch = "UPDATE " + tokens + " SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"
		q.activeExpr = "max(coalesce(last_used_at, created_at), created_at)"
	}

	for i := range q.stmts {
		q.stmts[i] = bind(d, q.stmts[i])
	}
	for _, p := range []*string{&q.insert, &q.insertBounded, &q.insertHashes, &q.countLive, &q.update, &q.version,
		&q.deleteHashes, &q.revoke, &q.exists, &q.revokeAll, &q.deleteToken, &q.touch} {
		*p = bind(d, *p)
	}
	return q
}

// builder assembles a statement with a growing list of arguments.
type builder struct {
	d    Dialect
	sql  strings.Builder
	args []any
}

// arg appends v to the arguments and returns its placeholder.
func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	if b.d == SQLite {
		return "?" + strconv.Itoa(len(b.args))
	}
	return "$" + strconv.Itoa(len(b.args))
}

func (b *builder) write(parts ...string) {
	for _, p := range parts {
		b.sql.WriteString(p)
	}
}
