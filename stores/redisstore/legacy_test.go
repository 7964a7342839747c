package redisstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
)

// The layout before owner kinds and IssuedAt: records without the field ia,
// and one owner index o:<owner> per owner ID, holding the IDs of the user
// and the org of that ID alike. A Store reads such data as it is and moves
// an owner's legacy index into the kind-qualified ones (ow:<kind>:<owner>)
// the first time it lists, revokes or bounds that owner.

// legacy rewrites the stored token x into the old layout: no ia field, and
// indexed under o:<owner> instead of ow:<kind>:<owner>.
func (f *fixture) legacy(x *apitoken.Token) {
	f.t.Helper()
	f.do("HDEL", f.recordKey(x), "ia")
	f.do("ZREM", f.ownerKey(x.Owner()), x.ID)
	f.do("ZADD", f.ns+"o:"+x.OwnerID, 0, x.ID)
}

func (f *fixture) ownerKey(o apitoken.Owner) string {
	kind := "1"
	if o.Kind == apitoken.KindOrg {
		kind = "2"
	}
	return f.ns + "ow:" + kind + ":" + o.ID
}

// members returns the IDs in the sorted set key.
func (f *fixture) members(key string) []string {
	f.t.Helper()
	ids, err := f.client.ZRange(f.t.Context(), key, 0, -1).Result()
	require.NoError(f.t, err, "ZRANGE %s", key)
	slices.Sort(ids)
	return ids
}

func (f *fixture) exists(key string) bool {
	f.t.Helper()
	n, err := f.client.Exists(f.t.Context(), key).Result()
	require.NoError(f.t, err, "EXISTS %s", key)
	return n == 1
}

// legacy42 makes tokens of user "42" and org "42" in the old layout (one
// index o:42 for both) and one of user "42" in the new layout.
func legacy42(t *testing.T) (f *fixture, user, org, fresh *apitoken.Token) {
	f = newFixture(t, redisstore.WithRetention(0))
	user = f.token("42", nil)
	org = f.token("42", func(x *apitoken.Token) { x.Kind, x.OrgID = apitoken.KindOrg, "42" })
	f.legacy(user)
	f.legacy(org)
	fresh = f.token("42", func(x *apitoken.Token) { x.IssuedAt = f.now.Add(time.Minute) })
	require.ElementsMatch(t, []string{user.ID, org.ID}, f.members(f.ns+"o:42"), "legacy index before the test")
	return f, user, org, fresh
}

// adopted checks that the legacy index o:42 is gone and its IDs sit in the
// index of their owner's kind.
func (f *fixture) adopted(user, org, fresh *apitoken.Token) {
	f.t.Helper()
	assert.False(f.t, f.exists(f.ns+"o:42"), "legacy index o:42 still exists")
	assert.ElementsMatch(f.t, []string{user.ID, fresh.ID}, f.members(f.ownerKey(apitoken.UserOwner("42"))), "index of user 42")
	assert.ElementsMatch(f.t, []string{org.ID}, f.members(f.ownerKey(apitoken.OrgOwner("42"))), "index of org 42")
}

func TestLegacyLayout(t *testing.T) {
	t.Parallel()

	t.Run("RecordWithoutIssuedAt", func(t *testing.T) {
		t.Parallel()
		f, user, _, _ := legacy42(t)
		ctx := t.Context()
		got, err := f.store.Get(ctx, user.ID)
		require.NoError(t, err)
		assert.True(t, got.IssuedAt.IsZero(), "Get: IssuedAt = %v, want zero", got.IssuedAt)
		assert.True(t, got.SecretIssuedAt().Equal(user.CreatedAt), "Get: SecretIssuedAt = %v, want CreatedAt %v", got.SecretIssuedAt(), user.CreatedAt)
		got, err = f.store.GetByHash(ctx, user.Hash)
		require.NoError(t, err)
		assert.True(t, got.IssuedAt.IsZero(), "GetByHash: IssuedAt = %v, want zero", got.IssuedAt)
		limit := apitoken.Limit{Rate: 1, Burst: 2}
		got, d, err := f.store.GetByHashAllow(ctx, user.Hash, apitoken.LimitDefaults{User: limit}, f.now)
		require.NoError(t, err)
		require.NotNil(t, d, "GetByHashAllow took no decision on a record without ia")
		assert.True(t, d.Allowed)
		assert.True(t, got.IssuedAt.IsZero(), "GetByHashAllow: IssuedAt = %v, want zero", got.IssuedAt)
		p, err := f.store.List(ctx, apitoken.Filter{})
		require.NoError(t, err)
		require.Len(t, p.Tokens, 3)

		// An Update writes the new layout.
		got, err = f.store.Get(ctx, user.ID)
		require.NoError(t, err)
		got.IssuedAt = f.now.Add(time.Hour)
		require.NoError(t, f.store.Update(ctx, got))
		again, err := f.store.Get(ctx, user.ID)
		require.NoError(t, err)
		assert.True(t, again.IssuedAt.Equal(f.now.Add(time.Hour)), "IssuedAt after Update = %v, want %v", again.IssuedAt, f.now.Add(time.Hour))
		assert.Contains(t, f.members(f.ownerKey(apitoken.UserOwner("42"))), user.ID, "an updated legacy token moves to the index of its kind")
		assert.NotContains(t, f.members(f.ns+"o:42"), user.ID, "an updated legacy token leaves the legacy index")
	})

	t.Run("RevokeAllAdopts", func(t *testing.T) {
		t.Parallel()
		f, user, org, fresh := legacy42(t)
		ctx := t.Context()
		n, err := f.store.RevokeAll(ctx, apitoken.UserOwner("42"), f.now)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "RevokeAll(user 42): the legacy token and the new one")
		for _, x := range []*apitoken.Token{user, fresh} {
			got, err := f.store.Get(ctx, x.ID)
			require.NoError(t, err)
			assert.True(t, got.Revoked(), "user 42's token %s not revoked", x.ID)
		}
		got, err := f.store.Get(ctx, org.ID)
		require.NoError(t, err)
		assert.False(t, got.Revoked(), "org 42's legacy token revoked by RevokeAll(user 42)")
		f.adopted(user, org, fresh)
		n, err = f.store.RevokeAll(ctx, apitoken.OrgOwner("42"), f.now)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "RevokeAll(org 42) after the adoption")
	})

	t.Run("ListAdopts", func(t *testing.T) {
		t.Parallel()
		f, user, org, fresh := legacy42(t)
		ctx := t.Context()
		p, err := f.store.List(ctx, apitoken.Filter{Owner: apitoken.OrgOwner("42")})
		require.NoError(t, err)
		require.Len(t, p.Tokens, 1)
		assert.Equal(t, org.ID, p.Tokens[0].ID)
		f.adopted(user, org, fresh)
		p, err = f.store.List(ctx, apitoken.Filter{Owner: apitoken.UserOwner("42"), Limit: 1})
		require.NoError(t, err)
		require.Len(t, p.Tokens, 1)
		p, err = f.store.List(ctx, apitoken.Filter{Owner: apitoken.UserOwner("42"), Cursor: p.Next})
		require.NoError(t, err)
		require.Len(t, p.Tokens, 1, "second page of user 42's two tokens")
	})

	t.Run("CreateBoundCountsLegacyTokens", func(t *testing.T) {
		t.Parallel()
		f, user, org, fresh := legacy42(t)
		ctx := t.Context()
		x := &apitoken.Token{ID: "id-bound", Kind: apitoken.KindUser, OwnerID: "42", CreatedAt: f.now, UpdatedAt: f.now, Version: 1}
		x.Hash[0], x.Hash[1] = 0xb0, 0x01
		err := f.store.Create(ctx, x, 2)
		assert.True(t, errors.Is(err, apitoken.ErrTooManyTokens), "Create(user 42's 3rd token, max 2) = %v, want ErrTooManyTokens (the legacy one counts)", err)
		f.adopted(user, org, fresh)
		y := &apitoken.Token{ID: "id-org", Kind: apitoken.KindOrg, OwnerID: "42", OrgID: "42", CreatedAt: f.now, UpdatedAt: f.now, Version: 1}
		y.Hash[0], y.Hash[1] = 0xb0, 0x02
		require.NoError(t, f.store.Create(ctx, y, 2), "Create(org 42's 2nd token, max 2)")
		assert.ElementsMatch(t, []string{org.ID, y.ID}, f.members(f.ownerKey(apitoken.OrgOwner("42"))))
	})

	t.Run("DeleteAndPruneClean", func(t *testing.T) {
		t.Parallel()
		f, user, org, _ := legacy42(t)
		ctx := t.Context()
		require.NoError(t, f.store.Delete(ctx, user.ID))
		assert.Equal(t, []string{org.ID}, f.members(f.ns+"o:42"), "legacy index after Delete")
		n, err := f.store.Prune(ctx, apitoken.PruneRequest{IdleBefore: f.now.Add(time.Second), Limit: 10})
		require.NoError(t, err)
		assert.Equal(t, 2, n, "Prune(all idle): the legacy org token and the new user token")
		assert.False(t, f.exists(f.ns+"o:42"), "legacy index after pruning its last token")
	})

	t.Run("StaleLegacyEntriesDropped", func(t *testing.T) {
		t.Parallel()
		f, user, org, fresh := legacy42(t)
		ctx := t.Context()
		f.do("ZADD", f.ns+"o:42", 0, "id-gone") // a token Redis dropped
		other := f.token("43", nil)
		f.do("ZADD", f.ns+"o:42", 0, other.ID) // an entry the owner no longer has
		n, err := f.store.RevokeAll(ctx, apitoken.UserOwner("42"), f.now)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		f.adopted(user, org, fresh)
		got, err := f.store.Get(ctx, other.ID)
		require.NoError(t, err)
		assert.False(t, got.Revoked(), "user 43's token revoked through a stale entry of o:42")
	})
}
