package apitoken_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// storedID reads the policy identity s holds, without writing.
func storedID(t *testing.T, s apitoken.PolicyRecorder) apitoken.PolicyID {
	t.Helper()
	id, err := s.RecordPolicy(t.Context(), apitoken.PolicyID{})
	require.NoError(t, err)
	return id
}

func issueSpec(name string) apitoken.Spec {
	return apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: name, Grants: apitoken.Grants{"devices": apitoken.AccessRead}}
}

// TestIssuerRefusesAnotherPrefix is §5 of issue 20: an Issuer without the
// servers' policy (the CLI without --policy) issued tok_ keys the servers
// reject as malformed. The first Issue records the policy's identity in
// the store; an Issuer under another prefix is refused, naming both.
func TestIssuerRefusesAnotherPrefix(t *testing.T) {
	ctx := t.Context()
	store := memstore.New()
	server := apitoken.Policy{Prefix: "acme", Roles: map[string]apitoken.Role{"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}}}
	iss, err := apitoken.NewIssuer(store, server)
	require.NoError(t, err)
	assert.Equal(t, apitoken.PolicyID{}, storedID(t, store), "nothing recorded before the first write")
	_, tok, err := iss.Issue(ctx, issueSpec("ci"))
	require.NoError(t, err)
	assert.Equal(t, server.ID(), storedID(t, store), "the first Issue records the policy's identity")

	cli, err := apitoken.NewIssuer(store, apitoken.Policy{}) // prefix "tok"
	require.NoError(t, err)
	const want = `apitoken: policy: Prefix: the store holds tokens of policy prefix "acme", this Issuer's policy has prefix "tok": ` +
		`give it the policy the store's tokens are issued under (their servers reject tok_ tokens as malformed), or a store of its own`

	secret, got, err := cli.Issue(ctx, issueSpec("from the cli"))
	require.ErrorIs(t, err, apitoken.ErrPolicy)
	var pe *apitoken.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Prefix", pe.Rule)
	assert.EqualError(t, err, want)
	assert.Nil(t, got)
	assert.Empty(t, secret.Reveal())
	assert.Equal(t, 1, store.Len(), "nothing stored")

	_, _, err = cli.Regenerate(ctx, tok.ID, apitoken.Lifetime{})
	assert.EqualError(t, err, want)
	after, err := store.Get(ctx, tok.ID)
	require.NoError(t, err)
	assert.Equal(t, tok.Version, after.Version, "the refused Regenerate changed nothing")
	assert.Equal(t, tok.Hash, after.Hash)

	assert.Equal(t, server.ID(), storedID(t, store), "the refused Issuer recorded nothing")
	_, _, err = iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{})
	require.NoError(t, err, "the servers' own policy still writes")
}

// TestIssuerWarnsOnAnotherFingerprint: a policy that changed under the same
// prefix writes, logs a warning naming both fingerprints, and becomes the
// store's; the next write under it is quiet.
func TestIssuerWarnsOnAnotherFingerprint(t *testing.T) {
	ctx := t.Context()
	store := memstore.New()
	v1 := apitoken.Policy{Prefix: "acme"}
	v2 := apitoken.Policy{Prefix: "acme", MaxTokensPerOwner: 20}
	require.NotEqual(t, v1.ID().Fingerprint, v2.ID().Fingerprint)
	iss1, err := apitoken.NewIssuer(store, v1)
	require.NoError(t, err)
	_, _, err = iss1.Issue(ctx, issueSpec("one"))
	require.NoError(t, err)

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	iss2, err := apitoken.NewIssuer(store, v2, apitoken.WithLogger(logger))
	require.NoError(t, err)
	_, _, err = iss2.Issue(ctx, issueSpec("two"))
	require.NoError(t, err, "another fingerprint under the same prefix writes")
	assert.Equal(t, `level=WARN msg="apitoken: the store's tokens were last issued under another policy with the same prefix; `+
		`if no policy change explains it, give this Issuer the policy of the store's servers" prefix=acme `+
		`store_fingerprint=`+v1.ID().Fingerprint+` policy_fingerprint=`+v2.ID().Fingerprint+"\n", logs.String())
	assert.Equal(t, v2.ID(), storedID(t, store), "the store keeps the latest writer's fingerprint")

	logs.Reset()
	_, _, err = iss2.Issue(ctx, issueSpec("three"))
	require.NoError(t, err)
	assert.Empty(t, logs.String(), "no warning once the store holds this policy")
}

// hidden hides every optional capability of the store it wraps.
type hidden struct{ apitoken.Store }

// failingRecorder is a store whose RecordPolicy fails.
type failingRecorder struct{ apitoken.Store }

func (failingRecorder) RecordPolicy(context.Context, apitoken.PolicyID) (apitoken.PolicyID, error) {
	return apitoken.PolicyID{}, errDown
}

func TestIssuerPolicyIDStoreCases(t *testing.T) {
	ctx := t.Context()
	t.Run("StoreWithoutTheCapability", func(t *testing.T) {
		store := hidden{memstore.New()}
		for _, p := range []apitoken.Policy{{Prefix: "acme"}, {}} {
			iss, err := apitoken.NewIssuer(store, p)
			require.NoError(t, err)
			_, _, err = iss.Issue(ctx, issueSpec("x"))
			require.NoError(t, err, "a store that records no identity checks none (prefix %q)", p.Prefix)
		}
	})
	t.Run("FailingStore", func(t *testing.T) {
		mem := memstore.New()
		iss, err := apitoken.NewIssuer(failingRecorder{mem}, apitoken.Policy{})
		require.NoError(t, err)
		_, _, err = iss.Issue(ctx, issueSpec("x"))
		require.ErrorIs(t, err, apitoken.ErrStoreUnavailable)
		assert.ErrorIs(t, err, errDown)
		assert.NotErrorIs(t, err, apitoken.ErrPolicy)
		assert.True(t, strings.HasPrefix(err.Error(), "apitoken: record policy: "), "got %q", err)
		assert.Equal(t, 0, mem.Len(), "nothing issued when the identity cannot be checked")
	})
}

// TestConcurrentFirstIssuersAgree races Issuers under two prefixes on an
// empty store: one prefix wins, and every token in the store has it.
func TestConcurrentFirstIssuersAgree(t *testing.T) {
	ctx := t.Context()
	store := memstore.New()
	var issuers []*apitoken.Issuer
	for _, prefix := range []string{"acme", "tok"} {
		iss, err := apitoken.NewIssuer(store, apitoken.Policy{Prefix: prefix})
		require.NoError(t, err)
		issuers = append(issuers, iss)
	}
	const each = 20
	errs := make([][]error, len(issuers))
	var wg sync.WaitGroup
	for i, iss := range issuers {
		errs[i] = make([]error, each)
		for j := range each {
			wg.Go(func() { _, _, errs[i][j] = iss.Issue(ctx, issueSpec("x")) })
		}
	}
	wg.Wait()
	winner := storedID(t, store).Prefix
	require.Contains(t, []string{"acme", "tok"}, winner)
	for i, p := range []string{"acme", "tok"} {
		for _, err := range errs[i] {
			if p == winner {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, apitoken.ErrPolicy)
			}
		}
	}
	page, err := store.List(ctx, apitoken.Filter{Limit: apitoken.MaxPageSize})
	require.NoError(t, err)
	require.Len(t, page.Tokens, each)
	for _, tok := range page.Tokens {
		assert.True(t, strings.HasPrefix(tok.Hint, winner+"_"), "hint %q under prefix %q", tok.Hint, winner)
	}
}

func TestPolicyID(t *testing.T) {
	full := apitoken.Policy{
		Prefix:          "acme",
		DefaultLifetime: apitoken.Months(6),
		Roles:           map[string]apitoken.Role{"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}},
		IPFilters:       map[string][]string{"office": {"203.0.113.0/24"}},
		OrgRateLimit:    apitoken.Limit{Rate: apitoken.Per(60, time.Minute), Burst: 10},
	}
	id := full.ID()
	assert.Equal(t, "acme", id.Prefix)
	assert.Regexp(t, `^[0-9a-f]{16}$`, id.Fingerprint)
	assert.False(t, id.IsZero())
	assert.True(t, apitoken.PolicyID{}.IsZero())
	assert.Equal(t, id, full.Clone().ID(), "equal policies, equal IDs")

	same := []struct {
		name string
		a, b apitoken.Policy
	}{
		{"the default prefix", apitoken.Policy{}, apitoken.Policy{Prefix: "tok"}},
		{"nil and empty maps and slices", apitoken.Policy{},
			apitoken.Policy{Roles: map[string]apitoken.Role{}, IPFilters: map[string][]string{}, DefaultRoles: []string{}, AllowedLifetimes: []apitoken.Lifetime{}}},
		{"nil and empty grants", apitoken.Policy{Roles: map[string]apitoken.Role{"r": {}}},
			apitoken.Policy{Roles: map[string]apitoken.Role{"r": {Grants: apitoken.Grants{}}}}},
	}
	for _, tc := range same {
		t.Run("Same/"+tc.name, func(t *testing.T) {
			assert.Equal(t, tc.a.ID(), tc.b.ID())
		})
	}
	assert.Equal(t, "tok", apitoken.Policy{}.ID().Prefix)

	differ := map[string]func(p *apitoken.Policy){
		"prefix":        func(p *apitoken.Policy) { p.Prefix = "acme2" },
		"lifetime":      func(p *apitoken.Policy) { p.DefaultLifetime = apitoken.Months(3) },
		"lifetime unit": func(p *apitoken.Policy) { p.DefaultLifetime = apitoken.Days(180) },
		"role grant": func(p *apitoken.Policy) {
			p.Roles["observer"] = apitoken.Role{Grants: apitoken.Grants{"devices": apitoken.AccessFull}}
		},
		"new role":     func(p *apitoken.Policy) { p.Roles["admin"] = apitoken.Role{} },
		"filter":       func(p *apitoken.Policy) { p.IPFilters["office"] = []string{"203.0.113.0/25"} },
		"rate":         func(p *apitoken.Policy) { p.OrgRateLimit.Rate = apitoken.Per(61, time.Minute) },
		"burst":        func(p *apitoken.Policy) { p.OrgRateLimit.Burst = 11 },
		"idle timeout": func(p *apitoken.Policy) { p.IdleTimeout = apitoken.NoIdleTimeout },
		"bool":         func(p *apitoken.Policy) { p.RequireExpiry = true },
	}
	for name, change := range differ {
		t.Run("Differs/"+name, func(t *testing.T) {
			p := full.Clone()
			change(&p)
			assert.NotEqual(t, id.Fingerprint, p.ID().Fingerprint)
		})
	}
}
