package redisstore_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/redisstore"
)

// TestPruneCleansDroppedTokens checks that once Redis itself has dropped
// an ended token's keys (the EXPIREAT backstop of WithRetention), Prune
// alone removes every index entry the token left behind, its owner's,
// org's and kind's included, found through the index back-references
// ({ns}:ix) rather than by scanning. Redis drops the keys here because
// their expiry is moved into the past (PEXPIREAT), as it drops them when
// the backstop instant passes.
func TestPruneCleansDroppedTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, redisstore.WithRetention(time.Hour))
	ctx := t.Context()
	end := f.now.Add(24 * time.Hour)
	dropped := f.token("user_1", func(x *apitoken.Token) {
		x.ExpiresAt = end
		x.PrevHash[0], x.PrevHash[31], x.PrevExpiresAt = 0x77, 0x77, end
	})
	other := f.token("user_2", func(x *apitoken.Token) {
		x.Kind, x.OwnerID, x.OrgID, x.ExpiresAt = apitoken.KindOrg, "org 2", "org 2", end.Add(time.Hour)
	})
	kept := f.token("user_1", nil) // never ends: no back-reference
	indexes := func(x *apitoken.Token) []string {
		kind := "1"
		if x.Kind == apitoken.KindOrg {
			kind = "2"
		}
		return []string{"ids", "lu", "end", "ow:" + kind + ":" + x.OwnerID, "g:" + x.OrgID, "k:" + kind}
	}
	in := func(x *apitoken.Token, index string) bool {
		t.Helper()
		_, err := f.client.ZScore(ctx, f.ns+index, x.ID).Result()
		return err == nil
	}
	backref := func(x *apitoken.Token) bool {
		t.Helper()
		ok, err := f.client.HExists(ctx, f.ns+"ix", x.ID).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !backref(dropped) || !backref(other) || backref(kept) {
		t.Fatalf("back-references of tokens with an end, with an end, without = %v, %v, %v; want true, true, false",
			backref(dropped), backref(other), backref(kept))
	}

	// Redis drops the token's keys: its record, its ID key, its alias.
	for _, k := range []string{f.recordKey(dropped), f.ns + "i:" + dropped.ID, f.ns + "h:" + hex.EncodeToString(dropped.PrevHash[:])} {
		f.do("PEXPIREAT", k, 1)
		if n, err := f.client.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Fatalf("EXISTS %s after its expiry = %d, %v; want 0", k, n, err)
		}
	}
	// A Prune whose criteria reach the token's end: only Redis's drop
	// matched, so nothing is counted, but every index is clean.
	n, err := f.store.Prune(ctx, apitoken.PruneRequest{EndedBefore: end.Add(time.Second), Limit: 10})
	if err != nil || n != 0 {
		t.Errorf("Prune = %d, %v; want 0, nil (the dropped token is not counted)", n, err)
	}
	for _, ix := range indexes(dropped) {
		if in(dropped, ix) {
			t.Errorf("index %s still holds the dropped token after Prune", ix)
		}
	}
	if backref(dropped) {
		t.Errorf("the dropped token's back-reference is still there after Prune")
	}
	for _, x := range []*apitoken.Token{other, kept} {
		for _, ix := range indexes(x) {
			if ix != "end" && !in(x, ix) {
				t.Errorf("index %s lost token %s, which Redis did not drop", ix, x.ID)
			}
		}
	}

	// Revoking and deleting keep the back-references in step.
	if err := f.store.Revoke(ctx, kept.ID, f.now); err != nil {
		t.Fatal(err)
	}
	if !backref(kept) {
		t.Errorf("a revoked token (now with an end) has no back-reference")
	}
	if err := f.store.Delete(ctx, kept.ID); err != nil {
		t.Fatal(err)
	}
	if backref(kept) {
		t.Errorf("a deleted token's back-reference is still there")
	}

	// A corrupt back-reference is reported, naming the hash.
	f.do("HSET", f.ns+"ix", other.ID, "not a back-reference")
	f.do("DEL", f.recordKey(other), f.ns+"i:"+other.ID)
	_, err = f.store.Prune(ctx, apitoken.PruneRequest{EndedBefore: end.Add(2 * time.Hour), Limit: 10})
	wantKeyError(t, "Prune(dropped token with a corrupt back-reference)", err, f.ns+"ix", "corrupt entry")
}

// TestWrongTypeBackrefs checks that a {ns}:ix of the wrong type makes the
// writes that keep it fail before they write anything, naming the key.
func TestWrongTypeBackrefs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	x := f.token("user_1", func(x *apitoken.Token) { x.ExpiresAt = f.now.Add(time.Hour) })
	f.do("DEL", f.ns+"ix")
	f.do("RPUSH", f.ns+"ix", "x")
	y := &apitoken.Token{ID: "id-new", Kind: apitoken.KindUser, OwnerID: "user_1", CreatedAt: f.now, UpdatedAt: f.now, Version: 1}
	y.Hash[0] = 0x42
	wantKeyError(t, "Create", f.store.Create(ctx, y, 0), f.ns+"ix", "wrong type")
	if _, err := f.store.Get(ctx, y.ID); err == nil {
		t.Errorf("Create refused for a bad key still stored the token")
	}
	wantKeyError(t, "Revoke", f.store.Revoke(ctx, x.ID, f.now), f.ns+"ix", "wrong type")
	if got, err := f.store.Get(ctx, x.ID); err != nil || got.Revoked() {
		t.Errorf("Revoke refused for a bad key: Get = %+v, %v; want the token unrevoked", got, err)
	}
	_, err := f.store.Prune(ctx, apitoken.PruneRequest{EndedBefore: f.now.Add(2 * time.Hour), Limit: 10})
	wantKeyError(t, "Prune", err, f.ns+"ix", "wrong type")
}
