package apitoken_test

import (
	"crypto/rand"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// budgetReader is crypto/rand until budget bytes have been read, then an
// error on every read.
type budgetReader struct{ budget atomic.Int64 }

var errEntropy = errors.New("entropy source failed")

func (r *budgetReader) Read(p []byte) (int, error) {
	left := r.budget.Load()
	if left <= 0 {
		return 0, errEntropy
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := rand.Read(p)
	r.budget.Add(-int64(n))
	return n, err
}

// TestRandomSourceFails: a random source that fails after 0, 1, 2, … 160
// bytes (past all an Issue or a Regenerate reads: the ID, the body, the seal
// nonce) makes Issue and Regenerate either succeed with a well-formed token
// that validates, or fail with ErrRandom, a zero Secret, no record and
// nothing stored or changed; never a token and an error, never a token
// that does not parse. Both outcomes occur, with and without seal keys.
func TestRandomSourceFails(t *testing.T) {
	t.Parallel()
	const maxBudget = 160
	seal := apitoken.WithSealKeys([]byte("generator-test-seal-key-01234567"))
	for _, sealed := range []bool{false, true} {
		name := "plain"
		if sealed {
			name = "sealed"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var issueFailed, issueOK, regenFailed, regenOK int
			for budget := range maxBudget + 1 {
				r := &budgetReader{}
				store := memstore.New()
				opts := []apitoken.IssuerOption{apitoken.WithRand(r)}
				if sealed {
					opts = append(opts, seal, quietAudit)
				}
				iss, err := apitoken.NewIssuer(store, testPolicy(), opts...)
				require.NoError(t, err)
				v, err := newValidator(t, store, testPolicy())
				require.NoError(t, err)

				// Issue with the budget.
				r.budget.Store(int64(budget))
				s, tok, err := iss.Issue(t.Context(), orgSpec())
				if err != nil {
					issueFailed++
					assert.Truef(t, errors.Is(err, apitoken.ErrRandom), "budget %d: Issue error = %v, want %v", budget, err, apitoken.ErrRandom)
					assert.Truef(t, s.IsZero(), "budget %d: Issue failed but returned a Secret", budget)
					assert.Nilf(t, tok, "budget %d: Issue failed but returned a record", budget)
					assert.Zerof(t, store.Len(), "budget %d: Issue failed but stored a token", budget)
				} else {
					issueOK++
					_, perr := apitoken.Parse(s.Reveal())
					assert.NoErrorf(t, perr, "budget %d: Issue's token does not parse", budget)
					_, verr := v.Validate(t.Context(), s.Reveal(), readDev)
					assert.NoErrorf(t, verr, "budget %d: Issue's token does not validate", budget)
				}

				// Regenerate a token issued with plenty of randomness.
				r.budget.Store(1 << 20)
				old, oldTok, err := iss.Issue(t.Context(), orgSpec())
				require.NoError(t, err)
				r.budget.Store(int64(budget))
				s, tok, err = iss.Regenerate(t.Context(), oldTok.ID, apitoken.Lifetime{})
				if err != nil {
					regenFailed++
					assert.Truef(t, errors.Is(err, apitoken.ErrRandom), "budget %d: Regenerate error = %v, want %v", budget, err, apitoken.ErrRandom)
					assert.Truef(t, s.IsZero(), "budget %d: Regenerate failed but returned a Secret", budget)
					assert.Nilf(t, tok, "budget %d: Regenerate failed but returned a record", budget)
					got, gerr := iss.Get(t.Context(), oldTok.ID)
					if assert.NoError(t, gerr) {
						assert.Truef(t, got.Hash == oldTok.Hash && got.Version == oldTok.Version,
							"budget %d: a failed Regenerate changed the stored record", budget)
					}
					_, verr := v.Validate(t.Context(), old.Reveal(), readDev)
					assert.NoErrorf(t, verr, "budget %d: the old secret stopped validating after a failed Regenerate", budget)
				} else {
					regenOK++
					_, perr := apitoken.Parse(s.Reveal())
					assert.NoErrorf(t, perr, "budget %d: Regenerate's token does not parse", budget)
					_, verr := v.Validate(t.Context(), s.Reveal(), readDev)
					assert.NoErrorf(t, verr, "budget %d: Regenerate's token does not validate", budget)
				}
			}
			assert.Positive(t, issueFailed, "Issue never failed")
			assert.Positive(t, issueOK, "Issue never succeeded")
			assert.Positive(t, regenFailed, "Regenerate never failed")
			assert.Positive(t, regenOK, "Regenerate never succeeded")
			t.Logf("budgets 0..%d bytes: Issue failed %d times with ErrRandom and succeeded %d; Regenerate failed %d and succeeded %d",
				maxBudget, issueFailed, issueOK, regenFailed, regenOK)
		})
	}
}

var _ io.Reader = (*budgetReader)(nil)
