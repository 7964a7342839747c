package sqlstore_test

import (
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestConformance runs the store conformance suite on SQLite (a file per
// subtest, tables under a random prefix) and on PostgreSQL (one database,
// a schema per subtest).
func TestConformance(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) apitoken.Store {
			db, _ := openSQLite(t)
			return newStore(t, db, sqlstore.SQLite, sqlstore.WithTablePrefix(storetest.Namespace(t)+"_"))
		})
	})
	t.Run("Postgres", func(t *testing.T) {
		db, _ := openPostgres(t)
		storetest.Run(t, func(t *testing.T) apitoken.Store {
			return newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(storetest.Namespace(t)))
		})
	})
}

func BenchmarkStore(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) apitoken.Store {
			db, _ := openSQLite(b)
			return newStore(b, db, sqlstore.SQLite)
		})
	})
	b.Run("Postgres", func(b *testing.B) {
		db, _ := openPostgres(b)
		storetest.Bench(b, func(b *testing.B) apitoken.Store {
			return newStore(b, db, sqlstore.Postgres, sqlstore.WithSchema(storetest.Namespace(b)))
		})
	})
}
