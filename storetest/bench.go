package storetest

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Bench measures the store newStore returns on the operations whose cost
// matters, as sub-benchmarks, so that the numbers of different stores are
// comparable:
//
//   - GetByHash: lookups over 4,096 stored tokens, three hits to one miss,
//     in a fixed shuffled order (the validation hot path).
//   - Touch1000: one Touch of 1,000 uses of distinct tokens (a last-used
//     flush), each batch a microsecond later than the one before, so every
//     use changes a stored value.
//   - Create: creating a token with a new ID and hash, no per-owner bound.
//
// Each sub-benchmark gets a store of its own from newStore, which has the
// same duties as for [Run]. Setup happens before the timed loop.
func Bench(b *testing.B, newStore func(b *testing.B) apitoken.Store) {
	b.Run("GetByHash", func(b *testing.B) { benchGetByHash(b, newStore(b)) })
	b.Run("Touch1000", func(b *testing.B) { benchTouch(b, newStore(b)) })
	b.Run("Create", func(b *testing.B) { benchCreate(b, newStore(b)) })
}

// benchOwners returns the owners benchmark tokens are spread over.
func benchOwners() []string {
	owners := make([]string, 100)
	for i := range owners {
		owners[i] = "user_" + strconv.Itoa(i)
	}
	return owners
}

func benchGetByHash(b *testing.B, s apitoken.Store) {
	const stored = 4096
	ctx := b.Context()
	owners := benchOwners()
	toks := make([]*apitoken.Token, stored)
	for i := range toks {
		toks[i] = newToken(b)
		toks[i].OwnerID = owners[i%len(owners)]
	}
	create(b, s, toks...)
	lookups := make([]apitoken.Hash, stored)
	for i := range lookups {
		if i%4 == 3 {
			lookups[i] = randomHash() // a miss
		} else {
			lookups[i] = toks[i].Hash
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(lookups), func(i, j int) { lookups[i], lookups[j] = lookups[j], lookups[i] })

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.GetByHash(ctx, lookups[i%len(lookups)])
		i++
	}
	b.StopTimer()
	// Check that the inputs are what they claim: three hits to one miss,
	// and every miss is ErrNotFound.
	hits := 0
	for _, h := range lookups {
		_, err := s.GetByHash(ctx, h)
		switch {
		case err == nil:
			hits++
		case !errors.Is(err, apitoken.ErrNotFound):
			b.Fatalf("GetByHash error = %v, want nil or %v", err, apitoken.ErrNotFound)
		}
	}
	if want := stored - stored/4; hits != want {
		b.Fatalf("GetByHash over the lookups found %d hits, want %d", hits, want)
	}
}

func benchTouch(b *testing.B, s apitoken.Store) {
	const n = 1000
	ctx := b.Context()
	toks := make([]*apitoken.Token, n)
	for i := range toks {
		toks[i] = newToken(b)
	}
	create(b, s, toks...)
	uses := make([]apitoken.Use, n)
	for i, tok := range toks {
		uses[i].ID = tok.ID
	}
	b.ReportAllocs()
	// Each batch is one microsecond later than the last, so every use
	// changes the stored value.
	at := now
	for b.Loop() {
		at = at.Add(time.Microsecond)
		for i := range uses {
			uses[i].At = at
		}
		if err := s.Touch(ctx, uses); err != nil {
			b.Fatalf("Touch error = %v, want nil", err)
		}
	}
	b.StopTimer()
	if got := get(b, s, toks[n-1].ID).LastUsedAt; !got.Equal(at) {
		b.Fatalf("LastUsedAt after the last Touch = %v, want %v", fmtTime(got), fmtTime(at))
	}
}

func benchCreate(b *testing.B, s apitoken.Store) {
	ctx := b.Context()
	owners := benchOwners()
	tmpl := newToken(b)
	base := randomHash()
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		// The ID costs a UUID and a string: what the Issuer pays too.
		tok := *tmpl
		tok.ID = newID(b)
		i++
		tok.Hash = base
		binary.BigEndian.PutUint64(tok.Hash[24:], i)
		tok.OwnerID = owners[i%uint64(len(owners))]
		if err := s.Create(ctx, &tok, 0); err != nil {
			b.Fatalf("Create error = %v, want nil", err)
		}
	}
}
