package sqlstore_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken/internal/storefaults"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// atRestTokens is how many tokens TestNoPlaintextAtRest issues.
const atRestTokens = 1000

// TestNoPlaintextAtRest: after 1,000 tokens are issued (half of them
// HMAC-hashed and sealed for recovery, a tenth regenerated with a grace
// period), the raw bytes of the store hold no secret body and no
// 12-character window of one, as bytes, in hex or in base64, and do hold
// every token ID: SQLite's database file and its -wal file, and
// PostgreSQL's pg_dump of the database. Once a secret is stored in plain
// (as a token's description), the same dump shows it: the search can
// fail.
func TestNoPlaintextAtRest(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		db, path := openSQLite(t)
		s := newStore(t, db, sqlstore.SQLite)
		dump := func() []storefaults.Dump {
			file, err := os.ReadFile(path)
			require.NoError(t, err)
			wal, err := os.ReadFile(path + "-wal")
			if !errors.Is(err, fs.ErrNotExist) {
				require.NoError(t, err)
			}
			return []storefaults.Dump{{Name: "the database file", Bytes: file}, {Name: "the -wal file", Bytes: wal}}
		}
		a := storefaults.IssueAtRest(t, s, policy, atRestTokens)
		a.Check(t, dump()...)
		a.Leak(t, s, policy)
		a.CheckLeak(t, dump()...)
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		db, dsn := openPostgres(t)
		s := newStore(t, db, sqlstore.Postgres, sqlstore.WithSchema(storetest.Namespace(t)))
		dump := func() storefaults.Dump {
			return storefaults.Dump{Name: "pg_dump of the database", Bytes: testservers.Postgres(t).Dump(t, dsn)}
		}
		a := storefaults.IssueAtRest(t, s, policy, atRestTokens)
		a.Check(t, dump())
		a.Leak(t, s, policy)
		a.CheckLeak(t, dump())
	})
}
