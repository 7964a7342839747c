package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// The model-based clause: random sequences of operations run against the
// store and against a reference model of the Store contract (a map and the
// documented rules), and every result is compared.

func modelClauses() []clause {
	return []clause{{"RandomSequencesMatchTheModel", testModel}}
}

// Model sequences: ModelSequences of ModelOperations each, seeded by
// ModelSeed; with -short, a tenth of the sequences.
const (
	ModelSequences  = 500
	ModelOperations = 50
	ModelSeed       = 1
)

// model is the reference: the stored tokens by ID, as the contract says
// they must be.
type model struct {
	toks map[string]*apitoken.Token
	now  time.Time
}

func (m *model) sortedIDs(keep func(*apitoken.Token) bool) []string {
	var ids []string
	for id, t := range m.toks {
		if keep(t) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// holder returns the ID of the token whose Hash or PrevHash is h, or "".
func (m *model) holder(h apitoken.Hash, except string) string {
	for id, t := range m.toks {
		if id != except && (t.Hash == h || (!t.PrevHash.IsZero() && t.PrevHash == h)) {
			return id
		}
	}
	return ""
}

func (m *model) live(o apitoken.Owner, at time.Time) int {
	n := 0
	for _, t := range m.toks {
		if t.Owner() == o && !t.Revoked() && !t.Expired(at) {
			n++
		}
	}
	return n
}

// outcome names an error for comparison: "" for nil, else the sentinel.
func outcome(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, apitoken.ErrTooManyTokens):
		return "ErrTooManyTokens"
	case errors.Is(err, apitoken.ErrNotFound):
		return "ErrNotFound"
	case errors.Is(err, apitoken.ErrConflict):
		return "ErrConflict"
	}
	return "error: " + err.Error()
}

var modelOwners = []apitoken.Owner{
	apitoken.UserOwner("42"), apitoken.OrgOwner("42"), apitoken.UserOwner("u1"), apitoken.OrgOwner("o1"),
}

// testModel: ModelSequences random sequences of ModelOperations create,
// get, get by hash, update (a new hash, a stale version, a taken hash),
// revoke, revoke all, delete, touch, prune, list and clock advances, each
// compared with the model. Each sequence starts from an empty store (the
// last one's tokens are deleted), so a failure prints its seed and the
// sequence up to the failing operation: a complete reproduction.
func testModel(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	sequences := ModelSequences
	if testing.Short() {
		sequences /= 10
	}
	m := &model{toks: map[string]*apitoken.Token{}, now: now}
	for seq := range sequences {
		for _, id := range m.sortedIDs(func(*apitoken.Token) bool { return true }) {
			if err := s.Delete(ctx, id); err != nil {
				t.Fatalf("sequence %d: clearing the last sequence's token %s: Delete error = %v", seq, id, err)
			}
			delete(m.toks, id)
		}
		r := rand.New(rand.NewPCG(ModelSeed, uint64(seq)))
		var log []string
		for i := range ModelOperations {
			desc, err := m.step(ctx, t, s, r)
			log = append(log, fmt.Sprintf("%2d. %s", i+1, desc))
			if err != nil {
				t.Fatalf("the store diverges from the model (seed %d, sequence %d) at operation %d: %v\nthe sequence, on an empty store:\n\t%s",
					ModelSeed, seq, i+1, err, strings.Join(log, "\n\t"))
			}
		}
	}
}

// pick returns a random existing ID (or a missing one, sometimes).
func (m *model) pick(t testing.TB, r *rand.Rand) string {
	ids := m.sortedIDs(func(*apitoken.Token) bool { return true })
	if len(ids) == 0 || r.IntN(8) == 0 {
		return newID(t)
	}
	return ids[r.IntN(len(ids))]
}

// step runs one random operation on s and on m and compares them.
func (m *model) step(ctx context.Context, t *testing.T, s apitoken.Store, r *rand.Rand) (string, error) {
	switch op := r.IntN(12); op {
	case 0, 1: // create
		tok := newToken(t)
		o := modelOwners[r.IntN(len(modelOwners))]
		tok.Kind, tok.OwnerID, tok.OrgID = o.Kind, o.ID, "org_"+o.ID
		tok.CreatedAt, tok.UpdatedAt, tok.IssuedAt = m.now, m.now, m.now
		if r.IntN(2) == 0 {
			tok.ExpiresAt = m.now.Add(time.Duration(1+r.IntN(48)) * time.Hour)
		}
		if w := m.toks[m.pick(t, r)]; w != nil && r.IntN(6) == 0 { // a taken hash
			tok.Hash = w.Hash
		}
		maxPer := r.IntN(3) // 0: no bound
		desc := fmt.Sprintf("Create(%s of %s, max %d)", tok.ID, o, maxPer)
		// The contract does not order the two refusals: when both apply,
		// either is right.
		var want []string
		if m.holder(tok.Hash, "") != "" {
			want = append(want, "ErrConflict")
		}
		if maxPer > 0 && m.live(o, tok.CreatedAt) >= maxPer {
			want = append(want, "ErrTooManyTokens")
		}
		if len(want) == 0 {
			want = []string{""}
		}
		if got := outcome(s.Create(ctx, tok, maxPer)); !slices.Contains(want, got) {
			return desc, fmt.Errorf("store.Create = %q, want one of %q", got, want)
		}
		if want[0] == "" {
			m.toks[tok.ID] = tok.Clone()
		}
		return desc, nil

	case 2: // get
		id := m.pick(t, r)
		got, err := s.Get(ctx, id)
		return "Get(" + id + ")", m.compare(got, err, m.toks[id])

	case 3: // get by hash
		id := m.pick(t, r)
		h := randomHash()
		if w := m.toks[id]; w != nil {
			h = w.Hash
			if !w.PrevHash.IsZero() && r.IntN(2) == 0 {
				h = w.PrevHash
			}
		}
		got, err := s.GetByHash(ctx, h)
		return "GetByHash(the hash of " + id + ")", m.compare(got, err, m.toks[id])

	case 4: // update
		id := m.pick(t, r)
		stored := m.toks[id]
		var tok *apitoken.Token
		if stored == nil {
			tok = newToken(t)
			tok.ID = id
		} else {
			tok = stored.Clone()
		}
		tok.Name = fmt.Sprintf("name %d", r.IntN(1000))
		var what []string
		switch r.IntN(5) {
		case 0: // a new secret, the old one kept for a grace period
			tok.PrevHash, tok.PrevExpiresAt, tok.Hash = tok.Hash, m.now.Add(time.Hour), randomHash()
			what = append(what, "new hash, grace")
		case 1:
			if o := m.pick(t, r); m.toks[o] != nil && o != id { // another token's hash
				tok.Hash = m.toks[o].Hash
				what = append(what, "taken hash")
			}
		case 2:
			tok.Version--
			what = append(what, "stale version")
		}
		tok.LastUsedAt = m.now.Add(-time.Duration(r.IntN(3)) * time.Hour)
		desc := fmt.Sprintf("Update(%s, %s)", id, strings.Join(what, ", "))
		want := ""
		switch {
		case stored == nil:
			want = "ErrNotFound"
		case tok.Version != stored.Version,
			m.holder(tok.Hash, id) != "", !tok.PrevHash.IsZero() && m.holder(tok.PrevHash, id) != "":
			want = "ErrConflict"
		}
		given := tok.Version
		if got := outcome(s.Update(ctx, tok)); got != want {
			return desc, fmt.Errorf("store.Update = %q, want %q", got, want)
		}
		if want != "" {
			return desc, nil
		}
		if tok.Version != given+1 {
			return desc, fmt.Errorf("store.Update set t.Version = %d, want %d", tok.Version, given+1)
		}
		next := tok.Clone()
		if stored.LastUsedAt.After(next.LastUsedAt) {
			next.LastUsedAt = stored.LastUsedAt // monotone
		}
		m.toks[id] = next
		return desc, nil

	case 5: // revoke
		id := m.pick(t, r)
		err := s.Revoke(ctx, id, m.now)
		w := m.toks[id]
		want := ""
		if w == nil {
			want = "ErrNotFound"
		}
		if got := outcome(err); got != want {
			return "Revoke(" + id + ")", fmt.Errorf("store.Revoke = %q, want %q", got, want)
		}
		if w != nil && !w.Revoked() {
			w.RevokedAt, w.UpdatedAt, w.Version = m.now, m.now, w.Version+1
		}
		return "Revoke(" + id + ")", nil

	case 6: // revoke all
		o := modelOwners[r.IntN(len(modelOwners))]
		want := 0
		for _, w := range m.toks {
			if w.Owner() == o && !w.Revoked() {
				w.RevokedAt, w.UpdatedAt, w.Version = m.now, m.now, w.Version+1
				want++
			}
		}
		n, err := s.RevokeAll(ctx, o, m.now)
		desc := fmt.Sprintf("RevokeAll(%s)", o)
		if err != nil || n != want {
			return desc, fmt.Errorf("store.RevokeAll = %d, %v; want %d, nil", n, err, want)
		}
		return desc, nil

	case 7: // delete
		id := m.pick(t, r)
		want := ""
		if m.toks[id] == nil {
			want = "ErrNotFound"
		}
		if got := outcome(s.Delete(ctx, id)); got != want {
			return "Delete(" + id + ")", fmt.Errorf("store.Delete = %q, want %q", got, want)
		}
		delete(m.toks, id)
		return "Delete(" + id + ")", nil

	case 8: // touch
		var uses []apitoken.Use
		for range 1 + r.IntN(3) {
			uses = append(uses, apitoken.Use{ID: m.pick(t, r), At: m.now.Add(-time.Duration(r.IntN(120)) * time.Minute)})
		}
		desc := fmt.Sprintf("Touch(%d uses)", len(uses))
		if err := s.Touch(ctx, uses); err != nil {
			return desc, fmt.Errorf("store.Touch = %v, want nil", err)
		}
		for _, u := range uses {
			if w := m.toks[u.ID]; w != nil && u.At.After(w.LastUsedAt) {
				w.LastUsedAt = u.At
			}
		}
		return desc, nil

	case 9: // prune
		req := apitoken.PruneRequest{Limit: 1 + r.IntN(4)}
		if r.IntN(2) == 0 {
			req.IdleBefore = m.now.Add(-time.Duration(r.IntN(48)) * time.Hour)
		} else {
			req.EndedBefore = m.now.Add(-time.Duration(r.IntN(48)) * time.Hour)
		}
		desc := fmt.Sprintf("Prune(idle before %s, ended before %s, limit %d)", fmtTime(req.IdleBefore), fmtTime(req.EndedBefore), req.Limit)
		matching := m.sortedIDs(req.Matches)
		n, err := s.Prune(ctx, req)
		if want := min(req.Limit, len(matching)); err != nil || n != want {
			return desc, fmt.Errorf("store.Prune = %d, %v; want %d, nil", n, err, want)
		}
		// Which of the matching tokens went is the store's choice: adopt
		// it, and check that nothing else went.
		gone := 0
		for _, id := range matching {
			if _, err := s.Get(ctx, id); errors.Is(err, apitoken.ErrNotFound) {
				delete(m.toks, id)
				gone++
			}
		}
		if gone != n {
			return desc, fmt.Errorf("store.Prune reported %d deletions, but %d matching tokens are gone", n, gone)
		}
		return desc, nil

	case 10: // list
		f := apitoken.Filter{Limit: 1 + r.IntN(4)}
		switch r.IntN(3) {
		case 0:
			f.Owner = modelOwners[r.IntN(len(modelOwners))]
		case 1:
			f.Kind = modelOwners[r.IntN(len(modelOwners))].Kind
		}
		desc := fmt.Sprintf("List(owner %v, kind %v, %d a page)", f.Owner, f.Kind, f.Limit)
		var got []string
		for pages := 0; ; pages++ {
			p, err := s.List(ctx, f)
			if err != nil || pages > 100 {
				return desc, fmt.Errorf("store.List page %d = %v (after %d pages)", pages, err, pages)
			}
			for _, tok := range p.Tokens {
				got = append(got, tok.ID)
				if err := m.compare(tok, nil, m.toks[tok.ID]); err != nil {
					return desc, fmt.Errorf("listed %v", err)
				}
			}
			if p.Next == "" {
				break
			}
			f.Cursor = p.Next
		}
		if want := m.sortedIDs(f.Matches); !slices.Equal(got, want) {
			return desc, fmt.Errorf("store.List = %v, want %v", got, want)
		}
		return desc, nil

	default: // the clock moves
		d := time.Duration(1+r.IntN(12*60)) * time.Minute
		m.now = m.now.Add(d)
		return "advance the clock " + d.String(), nil
	}
}

// compare checks a read of the store (got, err) against the model's token
// want (nil: the read must be ErrNotFound).
func (m *model) compare(got *apitoken.Token, err error, want *apitoken.Token) error {
	if want == nil {
		if !errors.Is(err, apitoken.ErrNotFound) {
			return fmt.Errorf("read = %s, %v; want ErrNotFound", describe(got), err)
		}
		return nil
	}
	if err != nil || got == nil {
		return fmt.Errorf("read = %s, %v; want %s", describe(got), err, describe(want))
	}
	if d := diff(got, want); len(d) > 0 {
		return fmt.Errorf("read %s differs from the model:\n\t\t%s", want.ID, strings.Join(d, "\n\t\t"))
	}
	return nil
}
