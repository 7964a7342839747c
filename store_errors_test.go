package apitoken_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// brokenStore is a memstore whose every call fails as a store that is down
// would, once down is set.
type brokenStore struct {
	*memstore.Store
	down atomic.Bool
}

func (s *brokenStore) Create(ctx context.Context, t *apitoken.Token, n int) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Create(ctx, t, n)
}

func (s *brokenStore) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, id)
}

func (s *brokenStore) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	if s.down.Load() {
		return apitoken.Page{}, errDown
	}
	return s.Store.List(ctx, f)
}

func (s *brokenStore) Revoke(ctx context.Context, id string, at time.Time) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Revoke(ctx, id, at)
}

func (s *brokenStore) RevokeAll(ctx context.Context, o apitoken.Owner, at time.Time) (int, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.Store.RevokeAll(ctx, o, at)
}

func (s *brokenStore) Delete(ctx context.Context, id string) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Delete(ctx, id)
}

// TestIssuerReportsAStoreOutage: every Issuer call on a store that is down
// fails with an error matching ErrStoreUnavailable (an admin API's 503),
// while the store's contract errors stay what they are.
func TestIssuerReportsAStoreOutage(t *testing.T) {
	store := &brokenStore{Store: memstore.New()}
	iss, err := apitoken.NewIssuer(store, apitoken.Policy{Prefix: "acme"})
	require.NoError(t, err)
	ctx := t.Context()
	_, tok, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})
	require.NoError(t, err)
	_, err = iss.Get(ctx, "nope")
	assert.ErrorIs(t, err, apitoken.ErrNotFound)
	assert.NotErrorIs(t, err, apitoken.ErrStoreUnavailable, "a missing token is no outage")

	store.down.Store(true)
	name := "renamed"
	for op, call := range map[string]func() error{
		"Issue": func() error {
			_, _, err := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci"})
			return err
		},
		"Get":       func() error { _, err := iss.Get(ctx, tok.ID); return err },
		"List":      func() error { _, err := iss.List(ctx, apitoken.Filter{}); return err },
		"Update":    func() error { _, err := iss.Update(ctx, tok.ID, apitoken.Patch{Name: &name}); return err },
		"Revoke":    func() error { return iss.Revoke(ctx, tok.ID) },
		"RevokeAll": func() error { _, err := iss.RevokeAll(ctx, apitoken.OrgOwner("org_1")); return err },
		"Delete":    func() error { return iss.Delete(ctx, tok.ID) },
	} {
		err := call()
		assert.ErrorIs(t, err, apitoken.ErrStoreUnavailable, op)
		assert.ErrorIs(t, err, errDown, "%s keeps the store's error", op)
	}
}
