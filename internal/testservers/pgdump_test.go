package testservers_test

import (
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/internal/testservers"
)

// TestPostgresDump: PG.Dump returns the rows of the database it is given,
// and not those of another database on the cluster.
func TestPostgresDump(t *testing.T) {
	pg := testservers.NewPostgres(t)
	dumped, other := pg.CreateDatabase(t), pg.CreateDatabase(t)
	for dsn, row := range map[string]string{dumped: "row in the dumped database", other: "row elsewhere"} {
		db, err := sql.Open("pgx", dsn)
		require.NoError(t, err)
		_, err = db.ExecContext(t.Context(), "CREATE SCHEMA s; CREATE TABLE s.t (v text, b bytea)")
		require.NoError(t, err)
		_, err = db.ExecContext(t.Context(), "INSERT INTO s.t VALUES ($1, $2)", row, []byte{0xde, 0xad})
		require.NoError(t, err)
		require.NoError(t, db.Close())
	}
	dump := string(pg.Dump(t, dumped))
	assert.Contains(t, dump, "CREATE TABLE s.t")
	assert.Contains(t, dump, "row in the dumped database")
	assert.Contains(t, dump, `\xdead`, "a bytea column, in hex")
	assert.NotContains(t, dump, "row elsewhere")
}
