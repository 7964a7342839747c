package sqlstore_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
	"github.com/apitoken/apitoken/stores/sqlstore"
)

// TestUpgradeKeepsTokensValid writes 1,000 issued tokens in the version 1
// layout, migrates to the current schema, and validates every one of them
// with its plaintext: an upgrade loses no token.
func TestUpgradeKeepsTokensValid(t *testing.T) {
	const n = 1000
	policy := apitoken.Policy{Prefix: "up"}
	// The tokens: issued on a memory store (plain SHA-256, no hash keys), so
	// their records and plaintexts are real; written below as version 1 rows.
	mem := memstore.New()
	iss, err := apitoken.NewIssuer(mem, policy)
	require.NoError(t, err)
	secrets := make([]string, n)
	toks := make([]*apitoken.Token, n)
	for i := range n {
		s, tok, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "t" + strconv.Itoa(i),
			Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}, Lifetime: apitoken.NoExpiry})
		require.NoError(t, err)
		secrets[i], toks[i] = s.Reveal(), tok
	}

	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			db, s, ns := atVersion1(t, d)

			tokens, hashes, ph, instant := rawSQL(d, ns)
			insTok := "INSERT INTO " + tokens + " (id, kind, owner_id, org_id, name, hint, hash, created_at, updated_at, version, attrs) VALUES (" +
				ph(1) + ", " + ph(2) + ", " + ph(3) + ", " + ph(4) + ", " + ph(5) + ", " + ph(6) + ", " + ph(7) + ", " + ph(8) + ", " + ph(8) + ", 1, " + ph(9) + ")"
			insHash := "INSERT INTO " + hashes + " (hash, token_id) VALUES (" + ph(1) + ", " + ph(2) + ")"
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			for _, tok := range toks {
				_, err := tx.ExecContext(ctx, insTok, tok.ID, int64(tok.Kind), tok.OwnerID, tok.OrgID, tok.Name, tok.Hint,
					tok.Hash[:], instant(tok.CreatedAt), `{"grants":{"*":"read"}}`)
				require.NoError(t, err, "insert a version 1 row")
				_, err = tx.ExecContext(ctx, insHash, tok.Hash[:], tok.ID)
				require.NoError(t, err, "insert a version 1 hash")
			}
			require.NoError(t, tx.Commit())

			require.NoError(t, s.Migrate(ctx))
			wantVersion(t, s, sqlstore.SchemaVersion)
			v, err := apitoken.NewValidator(s, policy, apitoken.WithSingleTenant("org_1"))
			require.NoError(t, err)
			t.Cleanup(func() { v.Close(context.Background()) })
			valid := 0
			for i, secret := range secrets {
				p, err := v.Validate(ctx, secret, apitoken.Request{API: "devices", Access: apitoken.AccessRead})
				if assert.NoError(t, err, "token %d after the upgrade", i) && p.TokenID == toks[i].ID {
					valid++
				}
			}
			assert.Equal(t, n, valid, "tokens that still validate after the upgrade")
		})
	}
}
