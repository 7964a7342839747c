package sqlstore_test

import (
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// TestConformance runs the store conformance suite on SQLite (a file per
// subtest, tables under a random prefix) and on PostgreSQL (one database,
// a schema per subtest), each with a bounded connection pool.
func TestConformance(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) apitoken.Store {
			db, _ := openSQLite(t)
			// sqlite.OpenDB leaves the number of open connections
			// unbounded: the 1,000 concurrent lookups of
			// Concurrent/RevokeSeenByEveryLaterLookup would open 1,000
			// connections to the file (8.5 s under -race instead of 0.5 s).
			db.SetMaxOpenConns(16)
			return newStore(t, db, sqlstore.SQLite, sqlstore.WithTablePrefix(storetest.Namespace(t)+"_"))
		})
	})
	t.Run("Postgres", func(t *testing.T) {
		db, _ := openPostgres(t)
		// postgres.OpenDB leaves the number of open connections unbounded:
		// the 1,000 concurrent lookups of
		// Concurrent/RevokeSeenByEveryLaterLookup would open 1,000, past
		// the server's max_connections. Queue them as an application's
		// pool would.
		db.SetMaxOpenConns(50)
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
