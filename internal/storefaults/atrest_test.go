package storefaults_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/storefaults"
	"github.com/apitoken/apitoken/stores/memstore"
)

// TestMain fails the package's tests if any goroutine they started is still
// running at the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFindCatchesEveryEncoding: the search of a dump finds a secret body,
// a 12-character window of one as bytes, in hex and in base64 at every
// alignment (a search that cannot fail proves nothing), and nothing in a
// dump of the records, hints and IDs without the secrets.
func TestFindCatchesEveryEncoding(t *testing.T) {
	store := memstore.New()
	policy := apitoken.Policy{Prefix: "atrest"}
	a := storefaults.IssueAtRest(t, store, policy, 20)
	require.Equal(t, 22, a.Secrets(), "secrets: 20 issued, 2 regenerated")
	iss, err := apitoken.NewIssuer(store, policy)
	require.NoError(t, err)
	page, err := iss.List(t.Context(), apitoken.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Tokens, 20)
	clean, err := json.Marshal(page.Tokens) // IDs, hints, no secrets
	require.NoError(t, err)
	assert.True(t, a.Find(clean).Zero(), "a dump of the listed tokens: %s", a.Find(clean))

	// A token of another store is no hit.
	other, _, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "not searched"})
	require.NoError(t, err)
	assert.True(t, a.Find([]byte(other.Reveal())).Zero(), "a secret IssueAtRest did not issue")

	leaked := a.Secret(3).Reveal()
	body := storefaults.Body(leaked)
	window := body[7 : 7+storefaults.WindowLen]
	pad := func(s string) []byte { return append(append(append([]byte{}, clean...), s...), clean...) }
	for _, c := range []struct {
		name string
		dump []byte
		want func(h storefaults.Hits) int
	}{
		{"the whole token", pad(leaked), func(h storefaults.Hits) int { return h.Bodies }},
		{"a window", pad("x" + window + "y"), func(h storefaults.Hits) int { return h.Windows }},
		{"a window in hex", pad(`\x00` + hex.EncodeToString([]byte(window))), func(h storefaults.Hits) int { return h.Hex }},
		{"the token in base64", pad(base64.StdEncoding.EncodeToString([]byte(leaked))), func(h storefaults.Hits) int { return h.Base64 }},
		{"the token in base64, offset 1", pad(base64.StdEncoding.EncodeToString([]byte("x" + leaked))), func(h storefaults.Hits) int { return h.Base64 }},
		{"the token in base64, offset 2", pad(base64.RawURLEncoding.EncodeToString([]byte("xy" + leaked))), func(h storefaults.Hits) int { return h.Base64 }},
		{"a window in base64", pad(`"` + base64.StdEncoding.EncodeToString([]byte("ab"+window)) + `"`), func(h storefaults.Hits) int { return h.Base64 }},
	} {
		h := a.Find(c.dump)
		assert.Positive(t, c.want(h), "Find(dump with %s) = %s, want a hit of that kind", c.name, h)
		assert.GreaterOrEqual(t, h.First, len(clean), "Find(dump with %s): first hit at %d, want in the leaked part", c.name, h.First)
	}
}
