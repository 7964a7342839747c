package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses of Touch and Prune.

func touchClauses() []clause {
	return []clause{
		{"SetsLastUsed", testTouchSets},
		{"NeverMovesBackwards", testTouchNeverBackwards},
		{"SkipsUnknownIDs", testTouchSkipsUnknown},
		{"KeepsVersion", testTouchKeepsVersion},
		{"EmptyBatch", testTouchEmpty},
		{"Batch1000", testTouchBatch1000},
	}
}

func pruneClauses() []clause {
	return []clause{
		{"Idle", testPruneIdle},
		{"Expired", testPruneExpired},
		{"Revoked", testPruneRevoked},
		{"EitherCriterion", testPruneEither},
		{"RespectsLimit", testPruneLimit},
		{"RechecksCondition", testPruneRechecks},
	}
}

// touch records uses, failing the test on error.
func touch(t testing.TB, s apitoken.Store, uses ...apitoken.Use) {
	t.Helper()
	if err := s.Touch(t.Context(), uses); err != nil {
		t.Fatalf("Touch(%d uses) error = %v, want nil", len(uses), err)
	}
}

func testTouchSets(t *testing.T, s apitoken.Store) {
	a, b := newToken(t), newToken(t)
	create(t, s, a, b)
	touch(t, s, apitoken.Use{ID: a.ID, At: now.Add(time.Hour)})
	wantTime(t, "Get(touched).LastUsedAt", get(t, s, a.ID).LastUsedAt, now.Add(time.Hour))
	wantTime(t, "GetByHash(touched).LastUsedAt", getByHash(t, s, a.Hash, "hash of the touched token").LastUsedAt, now.Add(time.Hour))
	wantTime(t, "Get(untouched).LastUsedAt", get(t, s, b.ID).LastUsedAt, time.Time{})
}

func testTouchNeverBackwards(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	create(t, s, tok)
	touch(t, s, apitoken.Use{ID: tok.ID, At: now.Add(2 * time.Hour)})
	touch(t, s, apitoken.Use{ID: tok.ID, At: now.Add(time.Hour)})
	wantTime(t, "LastUsedAt after touches at +2h, then +1h", get(t, s, tok.ID).LastUsedAt, now.Add(2*time.Hour))
	touch(t, s, apitoken.Use{ID: tok.ID, At: now.Add(4 * time.Hour)}, apitoken.Use{ID: tok.ID, At: now.Add(3 * time.Hour)})
	wantTime(t, "LastUsedAt after one batch touching at +4h, then +3h", get(t, s, tok.ID).LastUsedAt, now.Add(4*time.Hour))
	touch(t, s, apitoken.Use{ID: tok.ID, At: time.Time{}})
	wantTime(t, "LastUsedAt after a touch at the zero time", get(t, s, tok.ID).LastUsedAt, now.Add(4*time.Hour))
}

func testTouchSkipsUnknown(t *testing.T, s apitoken.Store) {
	a, b := newToken(t), newToken(t)
	create(t, s, a, b)
	unknown1, unknown2 := newID(t), newID(t)
	touch(t, s,
		apitoken.Use{ID: unknown1, At: now.Add(time.Hour)},
		apitoken.Use{ID: a.ID, At: now.Add(time.Hour)},
		apitoken.Use{ID: unknown2, At: now.Add(time.Hour)},
		apitoken.Use{ID: b.ID, At: now.Add(2 * time.Hour)},
	)
	wantTime(t, "LastUsedAt of a token touched after an unknown ID", get(t, s, a.ID).LastUsedAt, now.Add(time.Hour))
	wantTime(t, "LastUsedAt of a token touched after two unknown IDs", get(t, s, b.ID).LastUsedAt, now.Add(2*time.Hour))
	wantNotFound(t, s, unknown1, "of an unknown ID after Touch")
	if got := len(listAll(t, s, apitoken.Filter{})); got != 2 {
		t.Errorf("List after touching unknown IDs = %d tokens, want 2", got)
	}
}

func testTouchKeepsVersion(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	tok.Version = 3
	create(t, s, tok)
	touch(t, s, apitoken.Use{ID: tok.ID, At: now.Add(time.Hour)})
	got := get(t, s, tok.ID)
	if got.Version != 3 {
		t.Errorf("Version after Touch = %d, want 3", got.Version)
	}
	wantTime(t, "UpdatedAt after Touch", got.UpdatedAt, tok.UpdatedAt)
	want := tok.Clone()
	want.LastUsedAt = now.Add(time.Hour)
	wantSame(t, "Get after Touch", got, want)
}

func testTouchEmpty(t *testing.T, s apitoken.Store) {
	tok := newToken(t)
	create(t, s, tok)
	touch(t, s)
	touch(t, s, []apitoken.Use{}...)
	wantSame(t, "Get after an empty Touch", get(t, s, tok.ID), tok)
}

func testTouchBatch1000(t *testing.T, s apitoken.Store) {
	const n = 1000
	toks := makeTokens(t, s, n)
	uses := make([]apitoken.Use, 0, n+10)
	for i, tok := range toks {
		uses = append(uses, apitoken.Use{ID: tok.ID, At: now.Add(time.Duration(i+1) * time.Second)})
	}
	for range 10 {
		uses = append(uses, apitoken.Use{ID: newID(t), At: now})
	}
	// Spread the unknown IDs through the batch, in a fixed order.
	for i := range uses {
		j := (i * 7919) % len(uses)
		uses[i], uses[j] = uses[j], uses[i]
	}
	touch(t, s, uses...)
	got := listAll(t, s, apitoken.Filter{Limit: apitoken.MaxPageSize})
	if len(got) != n {
		t.Fatalf("List after Touch of %d uses = %d tokens, want %d", n, len(got), n)
	}
	bad := 0
	for i, tok := range got {
		if want := now.Add(time.Duration(i+1) * time.Second); !tok.LastUsedAt.Equal(want) {
			if bad++; bad <= 5 {
				t.Errorf("after one Touch of %d uses, token #%d LastUsedAt = %v, want %v", n, i, fmtTime(tok.LastUsedAt), fmtTime(want))
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d tokens in all have a wrong LastUsedAt", bad)
	}
}

// prune runs Prune and checks that it deleted want tokens, and that the
// tokens left are exactly keep.
func prune(t testing.TB, s apitoken.Store, r apitoken.PruneRequest, all []*apitoken.Token, want int, keep ...int) {
	t.Helper()
	n, err := s.Prune(t.Context(), r)
	if err != nil || n != want {
		t.Errorf("Prune(%s) = %d, %v; want %d, nil", fmtPrune(r), n, err, want)
	}
	var wantIDs []string
	for _, k := range keep {
		wantIDs = append(wantIDs, all[k].ID)
	}
	slices.Sort(wantIDs)
	nm := newNamer(all)
	if got := ids(listAll(t, s, apitoken.Filter{Limit: apitoken.MaxPageSize})); !slices.Equal(got, wantIDs) {
		t.Errorf("after Prune(%s), tokens left = %v, want %v", fmtPrune(r), nm.names(got), nm.names(wantIDs))
	}
}

func fmtPrune(r apitoken.PruneRequest) string {
	rel := func(tm time.Time) string {
		if tm.IsZero() {
			return "zero"
		}
		return fmt.Sprintf("now%+.0fd", tm.Sub(now).Hours()/24)
	}
	return fmt.Sprintf("IdleBefore %s, EndedBefore %s, Limit %d", rel(r.IdleBefore), rel(r.EndedBefore), r.Limit)
}

// aged returns a token created at now+created (UpdatedAt the same) after
// change has set its other instants.
func aged(t testing.TB, created time.Duration, change func(*apitoken.Token)) *apitoken.Token {
	t.Helper()
	tok := newToken(t)
	tok.CreatedAt = now.Add(created)
	tok.UpdatedAt = tok.CreatedAt
	if change != nil {
		change(tok)
	}
	return tok
}

func testPruneIdle(t *testing.T, s apitoken.Store) {
	all := []*apitoken.Token{
		0: aged(t, -100*day, nil), // never used, created before IdleBefore
		1: aged(t, -10*day, nil),  // never used, created recently
		2: aged(t, -100*day, func(x *apitoken.Token) { x.LastUsedAt = now.Add(-day) }),
		3: aged(t, -200*day, func(x *apitoken.Token) { x.LastUsedAt = now.Add(-100 * day) }),
		4: aged(t, -90*day, nil), // created exactly at IdleBefore: not before it
		5: aged(t, -100*day, func(x *apitoken.Token) { x.LastUsedAt = now.Add(-90 * day) }),
		// Ended long ago but active recently: EndedBefore is zero.
		6: aged(t, -10*day, func(x *apitoken.Token) { x.RevokedAt = now.Add(-9 * day) }),
		7: aged(t, -10*day, func(x *apitoken.Token) { x.ExpiresAt = now.Add(-9 * day) }),
	}
	create(t, s, all...)
	prune(t, s, apitoken.PruneRequest{IdleBefore: now.Add(-90 * day), Limit: 100}, all, 2, 1, 2, 4, 5, 6, 7)
}

func testPruneExpired(t *testing.T, s apitoken.Store) {
	// All were created and last used long ago; IdleBefore is zero.
	old := func(change func(*apitoken.Token)) *apitoken.Token { return aged(t, -365*day, change) }
	all := []*apitoken.Token{
		0: old(func(x *apitoken.Token) { x.ExpiresAt = now.Add(-40 * day) }),
		1: old(func(x *apitoken.Token) { x.ExpiresAt = now.Add(-10 * day) }),
		2: old(nil), // never expires
		3: old(func(x *apitoken.Token) { x.ExpiresAt = now.Add(30 * day) }),
		4: old(func(x *apitoken.Token) { x.ExpiresAt = now.Add(-30 * day) }), // exactly at EndedBefore
		5: old(func(x *apitoken.Token) { x.ExpiresAt = now.Add(-31 * day) }),
	}
	create(t, s, all...)
	prune(t, s, apitoken.PruneRequest{EndedBefore: now.Add(-30 * day), Limit: 100}, all, 2, 1, 2, 3, 4)
}

func testPruneRevoked(t *testing.T, s apitoken.Store) {
	old := func(change func(*apitoken.Token)) *apitoken.Token { return aged(t, -365*day, change) }
	all := []*apitoken.Token{
		0: old(func(x *apitoken.Token) { x.RevokedAt = now.Add(-40 * day) }),
		1: old(func(x *apitoken.Token) { x.RevokedAt = now.Add(-10 * day) }),
		// #2 was never revoked, #3 exactly at EndedBefore, #4 recently,
		// but it expired long ago.
		2: old(nil),
		3: old(func(x *apitoken.Token) { x.RevokedAt = now.Add(-30 * day) }),
		4: old(func(x *apitoken.Token) { x.RevokedAt, x.ExpiresAt = now.Add(-day), now.Add(-60*day) }),
	}
	create(t, s, all...)
	prune(t, s, apitoken.PruneRequest{EndedBefore: now.Add(-30 * day), Limit: 100}, all, 2, 1, 2, 3)
}

func testPruneEither(t *testing.T, s apitoken.Store) {
	all := []*apitoken.Token{
		0: aged(t, -100*day, nil), // idle
		1: aged(t, -50*day, func(x *apitoken.Token) { // used recently, expired long ago
			x.LastUsedAt, x.ExpiresAt = now.Add(-day), now.Add(-40*day)
		}),
		2: aged(t, -day, nil),
		3: aged(t, -50*day, func(x *apitoken.Token) { x.LastUsedAt, x.RevokedAt = now.Add(-day), now.Add(-day) }),
	}
	create(t, s, all...)
	prune(t, s, apitoken.PruneRequest{IdleBefore: now.Add(-90 * day), EndedBefore: now.Add(-30 * day), Limit: 100}, all, 2, 2, 3)
}

func testPruneLimit(t *testing.T, s apitoken.Store) {
	var all []*apitoken.Token
	for range 5 {
		all = append(all, aged(t, -100*day, nil))
	}
	all = append(all, aged(t, -day, nil), aged(t, -day, nil))
	create(t, s, all...)
	r := apitoken.PruneRequest{IdleBefore: now.Add(-90 * day), Limit: 2}
	left := 7
	for i, want := range []int{2, 2, 1, 0} {
		n, err := s.Prune(t.Context(), r)
		// The Pruner reads a short batch as "nothing more to delete", so
		// a store deletes as many as match, up to the limit.
		if err != nil || n != want {
			t.Errorf("Prune #%d(%s) with %d matching = %d, %v; want %d, nil", i+1, fmtPrune(r), left-2, n, err, want)
		}
		left -= n
	}
	nm := newNamer(all)
	want := []string{all[5].ID, all[6].ID}
	if got := ids(listAll(t, s, apitoken.Filter{})); !slices.Equal(got, want) {
		t.Errorf("after pruning in batches of 2, tokens left = %v, want %v", nm.names(got), nm.names(want))
	}
}

func testPruneRechecks(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	idle := aged(t, -100*day, nil)
	expired := aged(t, -100*day, func(x *apitoken.Token) { x.LastUsedAt, x.ExpiresAt = now, now.Add(-40*day) })
	create(t, s, idle, expired)

	// The idle token is used again, after a pruner computed IdleBefore.
	touch(t, s, apitoken.Use{ID: idle.ID, At: now})
	if n, err := s.Prune(ctx, apitoken.PruneRequest{IdleBefore: now.Add(-90 * day), Limit: 10}); err != nil || n != 0 {
		t.Errorf("Prune(IdleBefore now-90d) after the only idle token was touched at now = %d, %v; want 0, nil", n, err)
	}
	get(t, s, idle.ID)

	// The expired token gets a new expiry (as Regenerate does).
	u := get(t, s, expired.ID)
	u.ExpiresAt = now.Add(30 * day)
	if err := s.Update(ctx, u); err != nil {
		t.Fatalf("Update error = %v, want nil", err)
	}
	if n, err := s.Prune(ctx, apitoken.PruneRequest{EndedBefore: now.Add(-30 * day), Limit: 10}); err != nil || n != 0 {
		t.Errorf("Prune(EndedBefore now-30d) after the only expired token got a new expiry = %d, %v; want 0, nil", n, err)
	}
	get(t, s, expired.ID)
}
