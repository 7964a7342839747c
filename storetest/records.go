package storetest

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses of Create, Get, GetByHash, Update, Revoke, RevokeAll and Delete.

func createClauses() []clause {
	return []clause{
		{"DuplicateIDIsErrConflict", testCreateDuplicateID},
		{"DuplicateHashIsErrConflict", testCreateDuplicateHash},
		{"DuplicatePrevHashIsErrConflict", testCreateDuplicatePrevHash},
		{"ZeroPrevHashIsNotAConflict", testCreateZeroPrevHash},
		{"MaxPerOwner", testCreateMaxPerOwner},
		{"MaxPerOwnerCountsKindAndID", testCreateMaxPerOwnerKind},
		{"StoresVersionAsGiven", testCreateVersion},
		{"CopiesInput", testCreateCopiesInput},
	}
}

func getClauses() []clause {
	return []clause{
		{"ReturnsAllFields", testGetAllFields},
		{"MissingIsErrNotFound", testGetMissing},
		{"ReturnsCopy", testGetReturnsCopy},
	}
}

func getByHashClauses() []clause {
	return []clause{
		{"FindsHash", testGetByHashFindsHash},
		{"FindsPrevHash", testGetByHashFindsPrevHash},
		{"MissingIsErrNotFound", testGetByHashMissing},
		{"ZeroHashIsErrNotFound", testGetByHashZero},
		{"SnapshotIsNeverModified", testGetByHashSnapshot},
	}
}

func updateClauses() []clause {
	return []clause{
		{"ReplacesRecord", testUpdateReplaces},
		{"BumpsVersion", testUpdateBumpsVersion},
		{"StaleVersionIsErrConflict", testUpdateStale},
		{"MissingIsErrNotFound", testUpdateMissing},
		{"ChangesHashIndex", testUpdateHashIndex},
		{"HashOfOtherTokenIsErrConflict", testUpdateHashOfOther},
		{"LastUsedMonotone", testUpdateLastUsed},
	}
}

func revokeClauses() []clause {
	return []clause{
		{"SetsRevokedAt", testRevokeSets},
		{"BumpsVersion", testRevokeBumpsVersion},
		{"Idempotent", testRevokeIdempotent},
		{"MissingIsErrNotFound", testRevokeMissing},
	}
}

func revokeAllClauses() []clause {
	return []clause{
		{"OnlyOwner", testRevokeAllOnlyOwner},
		{"CountsOnlyNewlyRevoked", testRevokeAllCounts},
		{"UnknownOwnerIsZero", testRevokeAllUnknown},
		{"OwnerKindsAreSeparate", testRevokeAllOwnerKinds},
	}
}

func deleteClauses() []clause {
	return []clause{
		{"Removes", testDeleteRemoves},
		{"MissingIsErrNotFound", testDeleteMissing},
		{"FreesIDAndHashes", testDeleteFrees},
	}
}

// fullToken returns a token with every field set.
func fullToken(t testing.TB) *apitoken.Token {
	t.Helper()
	tok := newToken(t)
	tok.Kind = apitoken.KindOrg
	tok.OwnerID = "org_1"
	tok.Description = "nightly builds"
	tok.Roles = []string{"observer", "deployer"}
	tok.Grants = apitoken.Grants{"devices": apitoken.AccessRead, "billing": apitoken.AccessNone, apitoken.AllAPIs: apitoken.AccessFull}
	tok.Resources = []string{"site-a", "site-b"}
	tok.IPFilter = apitoken.IPFilter{Prefixes: []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("198.51.100.7/32"),
	}}
	tok.RateLimit = &apitoken.Limit{Rate: 2.5, Burst: 10}
	tok.Metadata = map[string]string{"team": "infra", "ticket": "OPS-1", "empty": ""}
	tok.Hint = "acme_8f3K…x9Q2"
	tok.PrevHash = randomHash()
	tok.PrevExpiresAt = now.Add(time.Hour)
	tok.Sealed = []byte{0, 1, 2, 3, 250, 251, 252, 253, 254, 255}
	tok.IssuedAt = now.Add(30 * time.Second)
	tok.UpdatedAt = now.Add(2 * time.Minute)
	tok.ExpiresAt = now.AddDate(0, 6, 0)
	tok.LastUsedAt = now.Add(time.Minute)
	tok.RevokedAt = now.Add(3 * time.Minute)
	tok.Version = 4
	return tok
}

func testGetAllFields(t *testing.T, s apitoken.Store) {
	full := fullToken(t)
	named := newToken(t)
	named.IPFilter = apitoken.IPFilter{Name: "office"}
	named.Grants = apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}
	named.RateLimit = &apitoken.Limit{} // an explicit "no limit", not nil
	minimal := newToken(t)
	for _, tc := range []struct {
		name string
		tok  *apitoken.Token
	}{{"every field set", full}, {"named IP filter", named}, {"optional fields zero", minimal}} {
		want := tc.tok.Clone()
		create(t, s, tc.tok)
		wantSame(t, "Get("+tc.name+")", get(t, s, want.ID), want)
		wantSame(t, "GetByHash("+tc.name+")", getByHash(t, s, want.Hash, tc.name), want)
	}
}

func testCreateDuplicateID(t *testing.T, s apitoken.Store) {
	a := newToken(t)
	create(t, s, a)
	b := newToken(t)
	b.ID = a.ID
	b.OwnerID = "user_2"
	wantErr(t, "Create(token with a stored ID)", s.Create(t.Context(), b, 0), apitoken.ErrConflict)
	wantSame(t, "Get(stored ID) after the refused Create", get(t, s, a.ID), a)
	wantHashNotFound(t, s, b.Hash, "hash of the refused token")
}

func testCreateDuplicateHash(t *testing.T, s apitoken.Store) {
	a := newToken(t)
	create(t, s, a)
	b := newToken(t)
	b.Hash = a.Hash
	wantErr(t, "Create(token with a stored Hash)", s.Create(t.Context(), b, 0), apitoken.ErrConflict)
	wantNotFound(t, s, b.ID, "after the refused Create")
	if got := getByHash(t, s, a.Hash, "the stored hash"); got.ID != a.ID {
		t.Errorf("GetByHash(the stored hash).ID = %s, want %s (the first token)", got.ID, a.ID)
	}
}

func testCreateDuplicatePrevHash(t *testing.T, s apitoken.Store) {
	a := newToken(t)
	a.PrevHash = randomHash()
	a.PrevExpiresAt = now.Add(time.Hour)
	create(t, s, a)
	for _, tc := range []struct {
		name   string
		change func(b *apitoken.Token)
	}{
		{"Hash equal to a stored PrevHash", func(b *apitoken.Token) { b.Hash = a.PrevHash }},
		{"PrevHash equal to a stored Hash", func(b *apitoken.Token) { b.PrevHash = a.Hash }},
		{"PrevHash equal to a stored PrevHash", func(b *apitoken.Token) { b.PrevHash = a.PrevHash }},
	} {
		b := newToken(t)
		b.PrevExpiresAt = now.Add(time.Hour)
		tc.change(b)
		wantErr(t, "Create(token with "+tc.name+")", s.Create(t.Context(), b, 0), apitoken.ErrConflict)
		wantNotFound(t, s, b.ID, "after Create of a token with "+tc.name)
	}
	for _, h := range []struct {
		name string
		h    apitoken.Hash
	}{{"Hash", a.Hash}, {"PrevHash", a.PrevHash}} {
		if got := getByHash(t, s, h.h, "the stored "+h.name); got.ID != a.ID {
			t.Errorf("GetByHash(the stored %s).ID = %s, want %s (the first token)", h.name, got.ID, a.ID)
		}
	}
}

func testCreateZeroPrevHash(t *testing.T, s apitoken.Store) {
	// Many tokens have no PrevHash; the zero value is "none", not a hash
	// that could collide.
	for i := range 3 {
		tok := newToken(t)
		if err := s.Create(t.Context(), tok, 0); err != nil {
			t.Fatalf("Create(token %d with zero PrevHash) error = %v, want nil", i+1, err)
		}
	}
}

func testCreateMaxPerOwner(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	tok := func(owner string, change func(*apitoken.Token)) *apitoken.Token {
		x := newToken(t)
		x.OwnerID = owner
		if change != nil {
			change(x)
		}
		return x
	}
	const limit = 3
	// user_1 starts with two live tokens and some that do not count.
	create(t, s,
		tok("user_1", nil),
		tok("user_1", func(x *apitoken.Token) { x.ExpiresAt = now.Add(time.Microsecond) }), // live at now
		tok("user_1", func(x *apitoken.Token) { x.RevokedAt = now.Add(-time.Hour) }),
		tok("user_1", func(x *apitoken.Token) { x.ExpiresAt = now.Add(-time.Hour) }),
		tok("user_1", func(x *apitoken.Token) { x.ExpiresAt = now }), // expired at now
		tok("user_2", nil), tok("user_2", nil), tok("user_2", nil), tok("user_2", nil),
	)
	third := tok("user_1", nil)
	if err := s.Create(ctx, third, limit); err != nil {
		t.Fatalf("Create(3rd live token, max 3) error = %v, want nil (revoked, expired and other owners' tokens do not count)", err)
	}
	fourth := tok("user_1", nil)
	wantErr(t, "Create(4th live token, max 3)", s.Create(ctx, fourth, limit), apitoken.ErrTooManyTokens)
	wantNotFound(t, s, fourth.ID, "after Create failed with ErrTooManyTokens")
	wantHashNotFound(t, s, fourth.Hash, "hash of the token refused with ErrTooManyTokens")
	if err := s.Create(ctx, fourth, 0); err != nil {
		t.Errorf("Create(4th live token, max 0) error = %v, want nil (zero means no bound)", err)
	}

	// The count uses t.CreatedAt, not the wall clock: user_3's token
	// expires at now+1h, so it is live for a token created at now and
	// expired for one created at now+1h.
	create(t, s, tok("user_3", func(x *apitoken.Token) { x.ExpiresAt = now.Add(time.Hour) }))
	early := tok("user_3", nil)
	wantErr(t, "Create(token created while the other is live, max 1)", s.Create(ctx, early, 1), apitoken.ErrTooManyTokens)
	late := tok("user_3", func(x *apitoken.Token) { x.CreatedAt, x.UpdatedAt = now.Add(time.Hour), now.Add(time.Hour) })
	if err := s.Create(ctx, late, 1); err != nil {
		t.Errorf("Create(token created when the other has expired, max 1) error = %v, want nil", err)
	}
}

// ownedBy returns a new token of owner (kind and ID).
func ownedBy(t testing.TB, o apitoken.Owner) *apitoken.Token {
	t.Helper()
	tok := newToken(t)
	tok.Kind, tok.OwnerID = o.Kind, o.ID
	if o.Kind == apitoken.KindOrg {
		tok.OrgID = o.ID
	}
	return tok
}

// testCreateMaxPerOwnerKind: the per-owner bound counts the live tokens of
// t.Owner(), kind and ID: user "42" and org "42" are different owners.
func testCreateMaxPerOwnerKind(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	user, org := apitoken.UserOwner("42"), apitoken.OrgOwner("42")
	create(t, s, ownedBy(t, user), ownedBy(t, user), ownedBy(t, org))
	if err := s.Create(ctx, ownedBy(t, org), 2); err != nil {
		t.Errorf("Create(org 42's 2nd live token, max 2) error = %v, want nil (user 42's tokens are another owner's)", err)
	}
	wantErr(t, "Create(org 42's 3rd live token, max 2)", s.Create(ctx, ownedBy(t, org), 2), apitoken.ErrTooManyTokens)
	wantErr(t, "Create(user 42's 3rd live token, max 2)", s.Create(ctx, ownedBy(t, user), 2), apitoken.ErrTooManyTokens)
	if err := s.Create(ctx, ownedBy(t, apitoken.UserOwner("43")), 1); err != nil {
		t.Errorf("Create(user 43's 1st token, max 1) error = %v, want nil", err)
	}
}

func testCreateVersion(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	tok.Version = 7
	create(t, s, tok)
	if got := get(t, s, tok.ID).Version; got != 7 {
		t.Errorf("Get(token created with Version 7).Version = %d, want 7", got)
	}
	if tok.Version != 7 {
		t.Errorf("after Create, the caller's Version = %d, want 7 (unchanged)", tok.Version)
	}
}

func testCreateCopiesInput(t *testing.T, s apitoken.Store) {
	tok := fullToken(t)
	want := tok.Clone()
	create(t, s, tok)
	mutate(tok)
	wantSame(t, "Get after the caller changed its Token", get(t, s, want.ID), want)
	wantSame(t, "GetByHash after the caller changed its Token", getByHash(t, s, want.Hash, "the created hash"), want)
}

// mutate changes every field of t except ID and the hashes, in place,
// including the elements of its slices and maps.
func mutate(t *apitoken.Token) {
	t.OwnerID += "x"
	t.OrgID += "x"
	t.Name += "x"
	t.Description += "x"
	if len(t.Roles) > 0 {
		t.Roles[0] = "admin"
	}
	if t.Grants != nil {
		t.Grants["devices"] = apitoken.AccessFull
		t.Grants["new"] = apitoken.AccessFull
	}
	if len(t.Resources) > 0 {
		t.Resources[0] = "site-z"
	}
	if len(t.IPFilter.Prefixes) > 0 {
		t.IPFilter.Prefixes[0] = netip.MustParsePrefix("0.0.0.0/0")
	}
	if t.RateLimit != nil {
		t.RateLimit.Burst++
	}
	if t.Metadata != nil {
		t.Metadata["team"] = "changed"
		t.Metadata["new"] = "x"
	}
	if len(t.Sealed) > 0 {
		t.Sealed[0] ^= 0xFF
	}
	t.IssuedAt = t.IssuedAt.Add(time.Hour)
	t.ExpiresAt = t.ExpiresAt.Add(time.Hour)
	t.LastUsedAt = t.LastUsedAt.Add(time.Hour)
	t.RevokedAt = t.RevokedAt.Add(time.Hour)
	t.Version += 10
}

func testGetMissing(t *testing.T, s apitoken.Store) {
	wantNotFound(t, s, newID(t), "of an empty store")
	create(t, s, newToken(t))
	wantNotFound(t, s, newID(t), "of an ID never created")
	wantNotFound(t, s, "", "of the empty ID")
}

func testGetReturnsCopy(t *testing.T, s apitoken.Store) {
	tok := fullToken(t)
	create(t, s, tok)
	mutate(get(t, s, tok.ID))
	wantSame(t, "Get after the caller changed an earlier Get's result", get(t, s, tok.ID), tok)
}

func testGetByHashFindsHash(t *testing.T, s apitoken.Store) {
	a, b := newToken(t), fullToken(t)
	create(t, s, a, b)
	wantSame(t, "GetByHash(Hash of the first token)", getByHash(t, s, a.Hash, "Hash of the first token"), a)
	wantSame(t, "GetByHash(Hash of the second token)", getByHash(t, s, b.Hash, "Hash of the second token"), b)
}

func testGetByHashFindsPrevHash(t *testing.T, s apitoken.Store) {
	a, b := newToken(t), newToken(t)
	b.PrevHash = randomHash()
	b.PrevExpiresAt = now.Add(time.Hour)
	create(t, s, a, b)
	// The grace period is the validator's business: the store finds a
	// PrevHash whatever PrevExpiresAt says.
	wantSame(t, "GetByHash(PrevHash)", getByHash(t, s, b.PrevHash, "PrevHash"), b)
}

func testGetByHashMissing(t *testing.T, s apitoken.Store) {
	wantHashNotFound(t, s, randomHash(), "unknown hash in an empty store")
	create(t, s, newToken(t))
	wantHashNotFound(t, s, randomHash(), "unknown hash")
}

func testGetByHashZero(t *testing.T, s apitoken.Store) {
	// Tokens without a PrevHash hold the zero hash there; it must not be
	// found.
	create(t, s, newToken(t), newToken(t))
	wantHashNotFound(t, s, apitoken.Hash{}, "zero hash")
}

func testGetByHashSnapshot(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	tok := fullToken(t)
	tok.RevokedAt = time.Time{}
	create(t, s, tok)
	snap := getByHash(t, s, tok.Hash, "the created hash")
	want := snap.Clone()

	if err := s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: now.Add(time.Hour)}}); err != nil {
		t.Fatalf("Touch error = %v, want nil", err)
	}
	u := get(t, s, tok.ID)
	u.Name = "renamed"
	u.Roles = append(u.Roles, "added")
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update error = %v, want nil", err)
	}
	if err := s.Revoke(ctx, tok.ID, now.Add(2*time.Hour)); err != nil {
		t.Fatalf("Revoke error = %v, want nil", err)
	}
	// The store must replace what it handed out, never change it.
	wantSame(t, "a GetByHash result after Touch, Update and Revoke", snap, want)
	if got := getByHash(t, s, tok.Hash, "the created hash"); !got.Revoked() || got.Name != "renamed" {
		t.Errorf("GetByHash after Update and Revoke: Name %q, RevokedAt %v; want %q, %v",
			got.Name, fmtTime(got.RevokedAt), "renamed", fmtTime(now.Add(2*time.Hour)))
	}
}

func testUpdateReplaces(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	create(t, s, tok)
	u := fullToken(t)
	u.ID = tok.ID
	u.Hash = tok.Hash
	u.Version = tok.Version
	if err := s.Update(t.Context(), u); err != nil {
		t.Fatalf("Update error = %v, want nil", err)
	}
	want := u.Clone()
	want.Version = tok.Version + 1
	wantSame(t, "Get after Update", get(t, s, tok.ID), want)
	wantSame(t, "GetByHash after Update", getByHash(t, s, tok.Hash, "the hash"), want)
}

func testUpdateBumpsVersion(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	tok.Version = 5
	create(t, s, tok)
	u := get(t, s, tok.ID)
	for i := range 2 {
		u.Name = "renamed"
		if err := s.Update(t.Context(), u); err != nil {
			t.Fatalf("Update #%d error = %v, want nil", i+1, err)
		}
		want := int64(5 + i + 1)
		if u.Version != want {
			t.Errorf("after Update #%d, t.Version = %d, want %d", i+1, u.Version, want)
		}
		if got := get(t, s, tok.ID).Version; got != want {
			t.Errorf("after Update #%d, stored Version = %d, want %d", i+1, got, want)
		}
	}
}

func testUpdateStale(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	create(t, s, tok)
	first, second := get(t, s, tok.ID), get(t, s, tok.ID)
	first.Name = "first"
	if err := s.Update(t.Context(), first); err != nil {
		t.Fatalf("Update(first) error = %v, want nil", err)
	}
	second.Name = "second"
	wantErr(t, "Update(second, based on the version the first replaced)", s.Update(t.Context(), second), apitoken.ErrConflict)
	got := get(t, s, tok.ID)
	if got.Name != "first" || got.Version != tok.Version+1 {
		t.Errorf("after a refused stale Update, stored Name %q, Version %d; want %q, %d", got.Name, got.Version, "first", tok.Version+1)
	}
	ahead := get(t, s, tok.ID)
	ahead.Version += 5
	wantErr(t, "Update(with a Version ahead of the store's)", s.Update(t.Context(), ahead), apitoken.ErrConflict)
}

func testUpdateMissing(t *testing.T, s apitoken.Store) {
	create(t, s, newToken(t))
	tok := newToken(t)
	wantErr(t, "Update(token never created)", s.Update(t.Context(), tok), apitoken.ErrNotFound)
	wantNotFound(t, s, tok.ID, "after Update of a missing token")
	wantHashNotFound(t, s, tok.Hash, "hash of the missing token Update was given")
}

func testUpdateHashIndex(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	tok := newToken(t)
	create(t, s, tok)
	h1 := tok.Hash

	// A new hash replaces the old one.
	u := get(t, s, tok.ID)
	h2 := randomHash()
	u.Hash = h2
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update(new Hash) error = %v, want nil", err)
	}
	wantHashNotFound(t, s, h1, "Hash replaced by Update")
	if got := getByHash(t, s, h2, "new Hash"); got.ID != tok.ID {
		t.Errorf("GetByHash(new Hash).ID = %s, want %s", got.ID, tok.ID)
	}

	// Regeneration: the token's own Hash moves to PrevHash; both find it.
	u = get(t, s, tok.ID)
	h3 := randomHash()
	u.Hash, u.PrevHash, u.PrevExpiresAt = h3, h2, now.Add(time.Hour)
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update(new Hash, PrevHash = its own old Hash) error = %v, want nil", err)
	}
	for _, h := range []struct {
		name string
		h    apitoken.Hash
	}{{"Hash after regeneration", h3}, {"PrevHash after regeneration", h2}} {
		if got := getByHash(t, s, h.h, h.name); got.ID != tok.ID {
			t.Errorf("GetByHash(%s).ID = %s, want %s", h.name, got.ID, tok.ID)
		}
	}

	// Clearing PrevHash removes it from the index.
	u = get(t, s, tok.ID)
	u.PrevHash, u.PrevExpiresAt = apitoken.Hash{}, time.Time{}
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update(zero PrevHash) error = %v, want nil", err)
	}
	wantHashNotFound(t, s, h2, "PrevHash cleared by Update")
	wantHashNotFound(t, s, apitoken.Hash{}, "zero hash")
	if got := getByHash(t, s, h3, "Hash"); got.ID != tok.ID {
		t.Errorf("GetByHash(Hash).ID = %s, want %s", got.ID, tok.ID)
	}
}

func testUpdateHashOfOther(t *testing.T, s apitoken.Store) {
	a, b := newToken(t), newToken(t)
	b.PrevHash = randomHash()
	b.PrevExpiresAt = now.Add(time.Hour)
	create(t, s, a, b)
	for _, tc := range []struct {
		name   string
		change func(u *apitoken.Token)
	}{
		{"Hash equal to another token's Hash", func(u *apitoken.Token) { u.Hash = b.Hash }},
		{"Hash equal to another token's PrevHash", func(u *apitoken.Token) { u.Hash = b.PrevHash }},
		{"PrevHash equal to another token's Hash", func(u *apitoken.Token) { u.PrevHash = b.Hash }},
		{"PrevHash equal to another token's PrevHash", func(u *apitoken.Token) { u.PrevHash = b.PrevHash }},
	} {
		u := get(t, s, a.ID)
		u.PrevExpiresAt = now.Add(time.Hour)
		tc.change(u)
		wantErr(t, "Update(token with "+tc.name+")", s.Update(t.Context(), u), apitoken.ErrConflict)
	}
	wantSame(t, "Get(updated token) after the refused Updates", get(t, s, a.ID), a)
	for _, h := range []struct {
		name string
		h    apitoken.Hash
	}{{"other token's Hash", b.Hash}, {"other token's PrevHash", b.PrevHash}} {
		if got := getByHash(t, s, h.h, h.name); got.ID != b.ID {
			t.Errorf("GetByHash(%s).ID = %s after the refused Updates, want %s", h.name, got.ID, b.ID)
		}
	}
}

func testUpdateLastUsed(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	tok := newToken(t)
	create(t, s, tok)
	stale := get(t, s, tok.ID) // LastUsedAt zero
	if err := s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: now.Add(2 * time.Hour)}}); err != nil {
		t.Fatalf("Touch error = %v, want nil", err)
	}
	stale.Name = "renamed"
	if err := s.Update(ctx, stale); err != nil {
		t.Fatalf("Update(zero LastUsedAt) error = %v, want nil", err)
	}
	wantTime(t, "LastUsedAt after Update with a zero LastUsedAt", get(t, s, tok.ID).LastUsedAt, now.Add(2*time.Hour))

	u := get(t, s, tok.ID)
	u.LastUsedAt = now.Add(time.Hour)
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update(earlier LastUsedAt) error = %v, want nil", err)
	}
	wantTime(t, "LastUsedAt after Update with an earlier LastUsedAt", get(t, s, tok.ID).LastUsedAt, now.Add(2*time.Hour))

	u = get(t, s, tok.ID)
	u.LastUsedAt = now.Add(3 * time.Hour)
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update(later LastUsedAt) error = %v, want nil", err)
	}
	wantTime(t, "LastUsedAt after Update with a later LastUsedAt", get(t, s, tok.ID).LastUsedAt, now.Add(3*time.Hour))
}

func testRevokeSets(t *testing.T, s apitoken.Store) {
	tok, other := newToken(t), newToken(t)
	create(t, s, tok, other)
	at := now.Add(time.Hour)
	if err := s.Revoke(t.Context(), tok.ID, at); err != nil {
		t.Fatalf("Revoke error = %v, want nil", err)
	}
	wantTime(t, "Get(revoked).RevokedAt", get(t, s, tok.ID).RevokedAt, at)
	wantTime(t, "GetByHash(revoked).RevokedAt", getByHash(t, s, tok.Hash, "hash of the revoked token").RevokedAt, at)
	wantTime(t, "Get(other token).RevokedAt", get(t, s, other.ID).RevokedAt, time.Time{})
}

func testRevokeBumpsVersion(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	tok.Version = 3
	create(t, s, tok)
	if err := s.Revoke(t.Context(), tok.ID, now.Add(time.Hour)); err != nil {
		t.Fatalf("Revoke error = %v, want nil", err)
	}
	if got := get(t, s, tok.ID).Version; got != 4 {
		t.Errorf("Version after Revoke = %d, want 4", got)
	}
}

func testRevokeIdempotent(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	create(t, s, tok)
	first := now.Add(time.Hour)
	for i, at := range []time.Time{first, now.Add(2 * time.Hour), now.Add(-time.Hour)} {
		if err := s.Revoke(t.Context(), tok.ID, at); err != nil {
			t.Fatalf("Revoke #%d error = %v, want nil", i+1, err)
		}
	}
	wantTime(t, "RevokedAt after three Revokes", get(t, s, tok.ID).RevokedAt, first)
}

func testRevokeMissing(t *testing.T, s apitoken.Store) {
	create(t, s, newToken(t))
	id := newID(t)
	wantErr(t, "Revoke(ID never created)", s.Revoke(t.Context(), id, now), apitoken.ErrNotFound)
	wantNotFound(t, s, id, "after Revoke of a missing token")
}

func testRevokeAllOnlyOwner(t *testing.T, s apitoken.Store) {
	var mine, others []*apitoken.Token
	for range 3 {
		mine = append(mine, newToken(t))
	}
	for _, owner := range []string{"user_2", "user_10", "user_1x", "org_1"} {
		tok := newToken(t)
		tok.OwnerID = owner
		others = append(others, tok)
	}
	org := newToken(t) // an org token whose org ID is the user's ID
	org.Kind, org.OwnerID, org.OrgID = apitoken.KindOrg, "org_user_1", "user_1"
	others = append(others, org)
	create(t, s, mine...)
	create(t, s, others...)

	at := now.Add(time.Hour)
	n, err := s.RevokeAll(t.Context(), apitoken.UserOwner("user_1"), at)
	if err != nil || n != len(mine) {
		t.Errorf("RevokeAll(user_1) = %d, %v; want %d, nil", n, err, len(mine))
	}
	for i, tok := range mine {
		wantTime(t, fmt.Sprintf("RevokedAt of user_1's token %d", i+1), get(t, s, tok.ID).RevokedAt, at)
	}
	for _, tok := range others {
		wantTime(t, "RevokedAt of the token of "+tok.OwnerID, get(t, s, tok.ID).RevokedAt, time.Time{})
	}
}

func testRevokeAllCounts(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	early := newToken(t)
	early.RevokedAt = now.Add(-time.Hour)
	live1, live2 := newToken(t), newToken(t)
	create(t, s, early, live1, live2)
	at := now.Add(time.Hour)
	if n, err := s.RevokeAll(ctx, apitoken.UserOwner("user_1"), at); err != nil || n != 2 {
		t.Errorf("RevokeAll(user_1 with 2 of 3 tokens live) = %d, %v; want 2, nil", n, err)
	}
	wantTime(t, "RevokedAt of the token revoked before RevokeAll", get(t, s, early.ID).RevokedAt, now.Add(-time.Hour))
	wantTime(t, "RevokedAt of a token RevokeAll revoked", get(t, s, live1.ID).RevokedAt, at)
	if n, err := s.RevokeAll(ctx, apitoken.UserOwner("user_1"), now.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("second RevokeAll(user_1) = %d, %v; want 0, nil", n, err)
	}
	wantTime(t, "RevokedAt after a second RevokeAll", get(t, s, live2.ID).RevokedAt, at)
}

func testRevokeAllUnknown(t *testing.T, s apitoken.Store) {
	if n, err := s.RevokeAll(t.Context(), apitoken.UserOwner("nobody"), now); err != nil || n != 0 {
		t.Errorf("RevokeAll(owner with no tokens) on an empty store = %d, %v; want 0, nil", n, err)
	}
	create(t, s, newToken(t))
	if n, err := s.RevokeAll(t.Context(), apitoken.UserOwner("nobody"), now); err != nil || n != 0 {
		t.Errorf("RevokeAll(owner with no tokens) = %d, %v; want 0, nil", n, err)
	}
}

// testRevokeAllOwnerKinds: RevokeAll matches Kind and OwnerID both, so
// user "42" and org "42" are revoked separately.
func testRevokeAllOwnerKinds(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	user, org := apitoken.UserOwner("42"), apitoken.OrgOwner("42")
	users := []*apitoken.Token{ownedBy(t, user), ownedBy(t, user)}
	orgs := []*apitoken.Token{ownedBy(t, org), ownedBy(t, org), ownedBy(t, org)}
	create(t, s, users...)
	create(t, s, orgs...)
	at := now.Add(time.Hour)
	if n, err := s.RevokeAll(ctx, user, at); err != nil || n != len(users) {
		t.Errorf("RevokeAll(%v) = %d, %v; want %d, nil", user, n, err, len(users))
	}
	for i, tok := range users {
		wantTime(t, fmt.Sprintf("RevokedAt of user 42's token %d", i+1), get(t, s, tok.ID).RevokedAt, at)
	}
	for i, tok := range orgs {
		wantTime(t, fmt.Sprintf("RevokedAt of org 42's token %d after RevokeAll(user 42)", i+1), get(t, s, tok.ID).RevokedAt, time.Time{})
	}
	later := now.Add(2 * time.Hour)
	if n, err := s.RevokeAll(ctx, org, later); err != nil || n != len(orgs) {
		t.Errorf("RevokeAll(%v) = %d, %v; want %d, nil", org, n, err, len(orgs))
	}
	for i, tok := range orgs {
		wantTime(t, fmt.Sprintf("RevokedAt of org 42's token %d", i+1), get(t, s, tok.ID).RevokedAt, later)
	}
	wantTime(t, "RevokedAt of user 42's token after RevokeAll(org 42)", get(t, s, users[0].ID).RevokedAt, at)
}

func testDeleteRemoves(t *testing.T, s apitoken.Store) {
	tok, other := newToken(t), newToken(t)
	tok.PrevHash = randomHash()
	tok.PrevExpiresAt = now.Add(time.Hour)
	create(t, s, tok, other)
	if err := s.Delete(t.Context(), tok.ID); err != nil {
		t.Fatalf("Delete error = %v, want nil", err)
	}
	wantNotFound(t, s, tok.ID, "after Delete")
	wantHashNotFound(t, s, tok.Hash, "Hash of a deleted token")
	wantHashNotFound(t, s, tok.PrevHash, "PrevHash of a deleted token")
	if p, err := s.List(t.Context(), apitoken.Filter{}); err != nil || len(p.Tokens) != 1 || p.Tokens[0].ID != other.ID {
		t.Errorf("List after Delete = %v, %v; want only the other token %s", ids(p.Tokens), err, other.ID)
	}
	wantSame(t, "Get(other token) after Delete", get(t, s, other.ID), other)
}

func testDeleteMissing(t *testing.T, s apitoken.Store) {
	wantErr(t, "Delete(ID never created) on an empty store", s.Delete(t.Context(), newID(t)), apitoken.ErrNotFound)
	tok := newToken(t)
	create(t, s, tok)
	if err := s.Delete(t.Context(), tok.ID); err != nil {
		t.Fatalf("Delete error = %v, want nil", err)
	}
	wantErr(t, "second Delete", s.Delete(t.Context(), tok.ID), apitoken.ErrNotFound)
}

func testDeleteFrees(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	tok.PrevHash = randomHash()
	tok.PrevExpiresAt = now.Add(time.Hour)
	create(t, s, tok)
	if err := s.Delete(t.Context(), tok.ID); err != nil {
		t.Fatalf("Delete error = %v, want nil", err)
	}
	again := tok.Clone()
	again.Name = "again"
	if err := s.Create(t.Context(), again, 0); err != nil {
		t.Fatalf("Create(same ID and hashes as a deleted token) error = %v, want nil", err)
	}
	wantSame(t, "Get after re-creating a deleted token", get(t, s, tok.ID), again)
}

// readByHashClauses check the optional HashReader capability; they skip on
// a store without it.
func readByHashClauses() []clause {
	return []clause{
		{"OverwritesEveryField", testReadByHashOverwrites},
		{"ResultIsNeverModified", testReadByHashSnapshot},
	}
}

func testReadByHashOverwrites(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.HashReader](t, s)
	full, plain := fullToken(t), newToken(t)
	create(t, s, full, plain)
	// Reading the plain token over the full one must leave nothing of it.
	dst := get(t, s, full.ID)
	if err := r.ReadByHash(t.Context(), plain.Hash, dst); err != nil {
		t.Fatalf("ReadByHash error = %v, want nil", err)
	}
	wantSame(t, "ReadByHash into a Token holding another", dst, plain)
}

func testReadByHashSnapshot(t *testing.T, s apitoken.Store) {
	r := capability[apitoken.HashReader](t, s)
	ctx := t.Context()
	tok := fullToken(t)
	tok.RevokedAt = time.Time{}
	create(t, s, tok)
	var read apitoken.Token
	if err := r.ReadByHash(ctx, tok.Hash, &read); err != nil {
		t.Fatalf("ReadByHash error = %v, want nil", err)
	}
	want := read.Clone()
	if err := s.Touch(ctx, []apitoken.Use{{ID: tok.ID, At: now.Add(time.Hour)}}); err != nil {
		t.Fatalf("Touch error = %v, want nil", err)
	}
	u := get(t, s, tok.ID)
	u.Name = "renamed"
	u.Roles = append(u.Roles, "added")
	u.Metadata["added"] = "yes"
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update error = %v, want nil", err)
	}
	if err := s.Revoke(ctx, tok.ID, now.Add(2*time.Hour)); err != nil {
		t.Fatalf("Revoke error = %v, want nil", err)
	}
	wantSame(t, "a ReadByHash result after Touch, Update and Revoke", &read, want)
}
