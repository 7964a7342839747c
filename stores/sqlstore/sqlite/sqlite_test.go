package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/stores/sqlstore/sqlite"
)

// TestOpen: Open refuses a database without the schema, naming Migrate and
// WithMigrate; WithMigrate creates it (under the store options' prefix);
// the store's Close closes the database.
func TestOpen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tokens.db")

	_, err := sqlite.Open(ctx, path)
	require.ErrorIs(t, err, sqlstore.ErrNotMigrated)
	assert.Contains(t, err.Error(), "Store.Migrate")
	assert.Contains(t, err.Error(), "sqlite.WithMigrate")

	prefix := sqlite.WithStoreOptions(sqlstore.WithTablePrefix("p_"))
	s, err := sqlite.Open(ctx, path, sqlite.WithMigrate(), prefix)
	require.NoError(t, err)
	v, err := s.Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, sqlstore.SchemaVersion, v)
	assert.Contains(t, s.String(), `"p_*"`)
	require.NoError(t, s.Close(ctx))
	_, err = s.Version(ctx)
	assert.ErrorContains(t, err, "database is closed", "Version after Close")

	// Migrated: Open needs no WithMigrate, but the same prefix.
	s, err = sqlite.Open(ctx, path, prefix)
	require.NoError(t, err)
	_, err = s.Get(ctx, "x")
	assert.ErrorIs(t, err, apitoken.ErrNotFound)
	require.NoError(t, s.Close(ctx))
	_, err = sqlite.Open(ctx, path)
	assert.ErrorIs(t, err, sqlstore.ErrNotMigrated, "Open with the default prefix")

	_, err = sqlite.Open(ctx, path, nil)
	assert.Error(t, err, "nil Option")
	_, err = sqlite.Open(ctx, path, sqlite.WithStoreOptions(sqlstore.WithSchema("auth")))
	assert.Error(t, err, "WithSchema on SQLite")
}
