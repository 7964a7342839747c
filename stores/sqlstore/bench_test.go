package sqlstore_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/sqlstore"
	"github.com/apitoken/apitoken/storetest"
)

// benchDialects runs f as a sub-benchmark per dialect with a fresh,
// migrated store.
func benchDialects(b *testing.B, f func(b *testing.B, s *sqlstore.Store, db *sql.DB, tokens string)) {
	b.Run("SQLite", func(b *testing.B) {
		db, _ := openSQLite(b)
		f(b, newStore(b, db, sqlstore.SQLite), db, sqlstore.DefaultTablePrefix+"tokens")
	})
	b.Run("Postgres", func(b *testing.B) {
		db, _ := openPostgres(b)
		schema := storetest.Namespace(b)
		f(b, newStore(b, db, sqlstore.Postgres, sqlstore.WithSchema(schema)), db, schema+"."+sqlstore.DefaultTablePrefix+"tokens")
	})
}

// BenchmarkValidate compares Validator.Validate on the store (parse,
// SHA-256, the store's one prepared query by hash through the hashes
// table, decoding the row, the checks) with its floor: a raw prepared
// SELECT of the same columns by primary key, scanned into untyped values.
// 512 tokens are used in turn. The issue's target is Validate ≤ 1.3× the
// raw query.
func BenchmarkValidate(b *testing.B) {
	benchDialects(b, func(b *testing.B, s *sqlstore.Store, db *sql.DB, tokens string) {
		const n = 512
		iss, v := services(b, s)
		secrets := make([]string, n)
		ids := make([]string, n)
		for i := range n {
			var tok *apitoken.Token
			secrets[i], tok = issue(b, iss)
			ids[i] = tok.ID
		}
		b.Run("Validate", func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := v.Validate(ctx, secrets[i%n], readDevices); err != nil {
					b.Fatalf("Validate: %v", err)
				}
				i++
			}
		})
		b.Run("RawSelectByID", func(b *testing.B) {
			ctx := b.Context()
			q := "SELECT id, kind, owner_id, org_id, name, description, hint, hash, prev_hash, prev_expires_at, sealed, " +
				"created_at, updated_at, expires_at, last_used_at, revoked_at, version, rate_limit_rate, rate_limit_burst, attrs, issued_at " +
				"FROM " + tokens + " WHERE id = $1"
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				b.Fatalf("prepare: %v", err)
			}
			defer st.Close()
			vals := make([]any, 21)
			dest := make([]any, len(vals))
			for i := range vals {
				dest[i] = &vals[i]
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := st.QueryRowContext(ctx, ids[i%n]).Scan(dest...); err != nil {
					b.Fatalf("raw SELECT: %v", err)
				}
				i++
			}
		})
	})
}

// BenchmarkTouch1000 measures one Touch of 1,000 last-used times (a
// Validator flush), each batch later than the last so every row changes;
// ns/token is the cost per token.
func BenchmarkTouch1000(b *testing.B) {
	benchDialects(b, func(b *testing.B, s *sqlstore.Store, _ *sql.DB, _ string) {
		const n = 1000
		ctx := b.Context()
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		uses := make([]apitoken.Use, n)
		for i := range uses {
			tok := crashToken(at)
			tok.ID = uuid.Must(uuid.NewV7()).String()
			if err := s.Create(ctx, tok, 0); err != nil {
				b.Fatalf("Create: %v", err)
			}
			uses[i].ID = tok.ID
		}
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Microsecond)
			for i := range uses {
				uses[i].At = at
			}
			if err := s.Touch(ctx, uses); err != nil {
				b.Fatalf("Touch: %v", err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		got, err := s.Get(ctx, uses[n-1].ID)
		if err != nil || !got.LastUsedAt.Equal(at) {
			b.Fatalf("after the last Touch, Get = %v, %v; want LastUsedAt %v", got, err, at)
		}
	})
}
