package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses of revocation at scale: RevokeAll reaches every token of the
// owner and no other, and a Revoke is seen by every lookup that starts
// after it returned, however many run at once.

func revokeAllScaleClauses() []clause {
	return []clause{{"RevokesEveryTokenOfTheOwner", testRevokeAllEvery}}
}

func revokeScaleClauses() []clause {
	return []clause{{"RevokeSeenByEveryLaterLookup", testRevokeSeenByLaterLookups}}
}

// ownerTokens returns n new tokens of owner.
func ownerTokens(t testing.TB, owner apitoken.Owner, n int) []*apitoken.Token {
	t.Helper()
	toks := make([]*apitoken.Token, n)
	for i := range toks {
		toks[i] = ownedBy(t, owner)
	}
	return toks
}

// testRevokeAllEvery: RevokeAll "revokes, in one atomic step and as Revoke
// does, every not yet revoked token of owner": of an owner with 300
// tokens (1,000 under APITOKEN_LONG=1) it returns 300, and a lookup by
// hash of each then shows it revoked at the instant given; the 100 tokens
// of another user (1,000 under APITOKEN_LONG=1) are untouched.
func testRevokeAllEvery(t *testing.T, s apitoken.Store) {
	owner, other := apitoken.UserOwner("user_1"), apitoken.UserOwner("user_2")
	mine, theirs := ownerTokens(t, owner, sized(300, 1000)), ownerTokens(t, other, sized(100, 1000))
	createAll(t, s, append(append([]*apitoken.Token(nil), mine...), theirs...))
	at := now.Add(time.Hour)
	if got, err := s.RevokeAll(t.Context(), owner, at); err != nil || got != len(mine) {
		t.Fatalf("RevokeAll(an owner of %d tokens) = %d, %v; want %d, nil", len(mine), got, err, len(mine))
	}
	bad := 0
	for i, tok := range mine {
		got := getByHash(t, s, tok.Hash, fmt.Sprintf("token %d of the owner revoked", i))
		if !got.RevokedAt.Equal(at) || got.Version != tok.Version+1 {
			if bad++; bad <= 5 {
				t.Errorf("GetByHash(token %d of the owner revoked) after RevokeAll: RevokedAt %v, Version %d; want %v, %d",
					i, fmtTime(got.RevokedAt), got.Version, fmtTime(at), tok.Version+1)
			}
		}
	}
	for i, tok := range theirs {
		got := getByHash(t, s, tok.Hash, fmt.Sprintf("token %d of another user", i))
		if got.Revoked() || got.Version != tok.Version {
			if bad++; bad <= 5 {
				t.Errorf("GetByHash(token %d of another user) after RevokeAll: RevokedAt %v, Version %d; want not revoked, %d",
					i, fmtTime(got.RevokedAt), got.Version, tok.Version)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d of %d tokens in all are wrong after RevokeAll", bad, len(mine)+len(theirs))
	}
}

// testRevokeSeenByLaterLookups: 1,000 goroutines look a token up, each
// once before Revoke is called and then in a loop, while Revoke runs,
// until it has made one lookup that started after Revoke returned (the
// order taken from a flag set once Revoke returned, read before each
// lookup). Every lookup that started after Revoke returned sees the token
// revoked: 0 of 1,000 miss it. Half the goroutines use GetByHash, half
// ReadByHash where the store has it. 1 round; 100 rounds (100,000 lookups
// after Revoke) under APITOKEN_LONG=1.
func testRevokeSeenByLaterLookups(t *testing.T, s apitoken.Store) {
	const lookups = 1000
	ctx := t.Context()
	reader, _ := s.(apitoken.HashReader)
	rounds := sized(1, 100)
	var after atomic.Int64 // lookups that started after Revoke returned, all rounds
	for round := range rounds {
		tok := newToken(t)
		create(t, s, tok)
		var revoked atomic.Bool
		var missed, failed atomic.Int64
		var errOnce sync.Once
		var firstErr error
		var ready, wg sync.WaitGroup
		ready.Add(lookups)
		release := make(chan struct{})
		for g := range lookups {
			wg.Go(func() {
				lookup := func() (*apitoken.Token, error) { return s.GetByHash(ctx, tok.Hash) }
				if reader != nil && g%2 == 1 {
					var dst apitoken.Token
					lookup = func() (*apitoken.Token, error) { return &dst, reader.ReadByHash(ctx, tok.Hash, &dst) }
				}
				for first := true; ; first = false {
					was := revoked.Load()
					got, err := lookup()
					if first {
						ready.Done()
						<-release
					}
					if err != nil {
						failed.Add(1)
						errOnce.Do(func() { firstErr = err })
						return
					}
					if was {
						after.Add(1)
						if !got.Revoked() {
							missed.Add(1)
						}
						return
					}
				}
			})
		}
		ready.Wait()
		close(release)
		if err := s.Revoke(ctx, tok.ID, now.Add(time.Hour)); err != nil {
			t.Fatalf("round %d: Revoke error = %v, want nil", round, err)
		}
		revoked.Store(true)
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Fatalf("round %d: %d of %d lookups during Revoke failed (first: %v), want 0", round, n, lookups, firstErr)
		}
		if n := missed.Load(); n > 0 {
			t.Fatalf("round %d: %d of %d lookups that started after Revoke returned saw the token not revoked, want 0", round, n, lookups)
		}
	}
	if got, want := after.Load(), int64(rounds*lookups); got != want {
		t.Errorf("%d lookups started after Revoke returned, want %d (one per goroutine and round)", got, want)
	}
}
