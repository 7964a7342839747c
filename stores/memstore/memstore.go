package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken"
)

// Store is an in-memory token store. Use [New]; the zero value is not usable.
type Store struct {
	// The layout keeps the garbage collector's work from growing with the
	// number of tokens. A token is three parts: a fixed-size record without
	// pointers (hashes, times, kind, version and the offsets of its
	// strings) in recs, which the collector never scans; one string holding
	// all its strings back to back (ID, owner, org, name, description,
	// hint) in texts, a single object marked without scanning; and an index
	// into shapes, the interned roles, grants, resources, IP filter, rate
	// limit, metadata and sealed secret that tokens with equal values share.
	// byHash is an open-addressing table of (first 8 bytes of a hash, slot)
	// pairs, without pointers either; a lookup usually reads one cache line.
	mu     sync.RWMutex
	recs   []rec    // by slot
	texts  []string // by slot: the token's strings, back to back
	free   []uint32 // free slots
	byID   map[string]uint32
	byHash index // Hash and PrevHash → slot
	shapes shapes
	policy apitoken.PolicyID // what RecordPolicy recorded
}

var (
	_ apitoken.Store          = (*Store)(nil)
	_ apitoken.HashReader     = (*Store)(nil)
	_ apitoken.UseMarker      = (*Store)(nil)
	_ apitoken.PolicyRecorder = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byID:   make(map[string]uint32),
		shapes: newShapes(),
	}
}

// Len returns the number of stored tokens.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// The strings of a token, in the order its text holds them.
const (
	strID = iota
	strOwner
	strOrg
	strName
	strDescription
	strHint
	strCreatedBy
	nStrings
)

// The times of a token but LastUsedAt.
const (
	timePrevExpires = iota
	timeCreated
	timeIssued
	timeUpdated
	timeExpires
	timeRevoked
	nTimes
)

// rec is the pointer-free part of a stored token.
type rec struct {
	hash, prevHash apitoken.Hash
	ends           [nStrings]uint32 // end offset of each string in the text
	shape          uint32
	kind           apitoken.Kind
	sec            [nTimes]int64 // Unix seconds; see setTime
	nsec           [nTimes]int32
	version        int64
	// lastUsed is LastUsedAt in Unix microseconds, one word so that
	// MarkUsed can move it forward under the read lock: read and write it
	// with loadLastUsed and markUsed only.
	lastUsed int64
}

// zeroSec is the Unix second of the zero time.Time.
var zeroSec = time.Time{}.Unix()

func (r *rec) setTime(i int, t time.Time) { r.sec[i], r.nsec[i] = t.Unix(), int32(t.Nanosecond()) }

func (r *rec) time(i int) time.Time {
	if r.sec[i] == zeroSec && r.nsec[i] == 0 {
		return time.Time{}
	}
	return time.Unix(r.sec[i], int64(r.nsec[i])).UTC()
}

func (r *rec) revoked() bool { return !r.time(timeRevoked).IsZero() }

// zeroMicro is the Unix microsecond of the zero time.Time.
var zeroMicro = time.Time{}.UnixMicro()

func (r *rec) loadLastUsed() time.Time {
	us := atomic.LoadInt64(&r.lastUsed)
	if us == zeroMicro {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// markUsed moves lastUsed forward to at (never back), atomically.
func (r *rec) markUsed(at time.Time) {
	us := at.UnixMicro()
	for old := atomic.LoadInt64(&r.lastUsed); us > old; old = atomic.LoadInt64(&r.lastUsed) {
		if atomic.CompareAndSwapInt64(&r.lastUsed, old, us) {
			return
		}
	}
}

// str returns string i of the token whose record is r and text is text.
func (r *rec) str(text string, i int) string {
	start := uint32(0)
	if i > 0 {
		start = r.ends[i-1]
	}
	return text[start:r.ends[i]]
}

// encode returns the record and text of t, without its shape.
func encode(t *apitoken.Token) (rec, string) {
	r := rec{hash: t.Hash, prevHash: t.PrevHash, kind: t.Kind, version: t.Version, lastUsed: t.LastUsedAt.UnixMicro()}
	var b strings.Builder
	for i, v := range [nStrings]string{t.ID, t.OwnerID, t.OrgID, t.Name, t.Description, t.Hint, t.CreatedBy} {
		b.WriteString(v)
		r.ends[i] = uint32(b.Len())
	}
	for i, v := range [nTimes]time.Time{t.PrevExpiresAt, t.CreatedAt, t.IssuedAt, t.UpdatedAt, t.ExpiresAt, t.RevokedAt} {
		r.setTime(i, v)
	}
	return r, b.String()
}

// fill sets *dst to the token in slot; its shape is shared with the store.
// The caller holds s.mu.
func (s *Store) fill(dst *apitoken.Token, slot uint32) {
	r, text := &s.recs[slot], s.texts[slot]
	sh := s.shapes.list[r.shape]
	*dst = apitoken.Token{
		ID: r.str(text, strID), Kind: r.kind, OwnerID: r.str(text, strOwner), OrgID: r.str(text, strOrg),
		Name: r.str(text, strName), Description: r.str(text, strDescription),
		Roles: sh.roles, Grants: sh.grants, Resources: sh.resources, IPFilter: sh.ipFilter,
		RateLimit: sh.rateLimit, Metadata: sh.metadata, Sealed: sh.sealed,
		Hint: r.str(text, strHint), CreatedBy: r.str(text, strCreatedBy), Hash: r.hash, PrevHash: r.prevHash, PrevExpiresAt: r.time(timePrevExpires),
		CreatedAt: r.time(timeCreated), IssuedAt: r.time(timeIssued), UpdatedAt: r.time(timeUpdated), ExpiresAt: r.time(timeExpires),
		LastUsedAt: r.loadLastUsed(), RevokedAt: r.time(timeRevoked), Version: r.version,
	}
}

// copyOf returns a deep copy of the token in slot. The caller holds s.mu.
func (s *Store) copyOf(slot uint32) *apitoken.Token {
	var t apitoken.Token
	s.fill(&t, slot)
	return t.Clone()
}

// str returns string i of the token in slot. The caller holds s.mu.
func (s *Store) str(slot uint32, i int) string { return s.recs[slot].str(s.texts[slot], i) }

func (s *Store) id(slot uint32) string { return s.str(slot, strID) }

func hashes(t *apitoken.Token) []apitoken.Hash {
	if t.PrevHash.IsZero() {
		return []apitoken.Hash{t.Hash}
	}
	return []apitoken.Hash{t.Hash, t.PrevHash}
}

// hashTaken reports whether any of t's hashes belongs to a token other than
// t.ID. The caller holds s.mu.
func (s *Store) hashTaken(t *apitoken.Token) bool {
	for _, h := range hashes(t) {
		if slot, ok := s.slotOf(&h); ok && s.id(slot) != t.ID {
			return true
		}
	}
	return t.Hash == t.PrevHash
}

// put stores a copy of t in slot, which held the token old (nil if the slot
// is new). The caller holds s.mu for writing.
func (s *Store) put(slot uint32, old, t *apitoken.Token) {
	r, text := encode(t)
	r.shape = s.shapes.intern(t)
	if old != nil {
		s.shapes.release(s.recs[slot].shape)
		for _, h := range hashes(old) {
			s.byHash.remove(&h, slot)
		}
	}
	s.recs[slot], s.texts[slot] = r, text
	s.byID[r.str(text, strID)] = slot
	for _, h := range hashes(t) {
		s.byHash.add(&h, slot)
	}
}

// newSlot returns a free slot. The caller holds s.mu for writing.
func (s *Store) newSlot() uint32 {
	if n := len(s.free); n > 0 {
		slot := s.free[n-1]
		s.free = s.free[:n-1]
		return slot
	}
	s.recs = append(s.recs, rec{})
	s.texts = append(s.texts, "")
	return uint32(len(s.recs) - 1)
}

// remove deletes the token in slot. The caller holds s.mu for writing.
func (s *Store) remove(slot uint32) {
	r := &s.recs[slot]
	delete(s.byID, s.id(slot))
	s.byHash.remove(&r.hash, slot)
	if !r.prevHash.IsZero() {
		s.byHash.remove(&r.prevHash, slot)
	}
	s.shapes.release(r.shape)
	s.recs[slot], s.texts[slot] = rec{}, ""
	s.free = append(s.free, slot)
}

// Create implements [apitoken.Store].
func (s *Store) Create(ctx context.Context, t *apitoken.Token, maxPerOwner int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t == nil || t.ID == "" || t.Hash.IsZero() {
		return fmt.Errorf("memstore: create: token needs an ID and a hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[t.ID]; ok {
		return fmt.Errorf("memstore: create %s: %w: duplicate ID", t.ID, apitoken.ErrConflict)
	}
	if s.hashTaken(t) {
		return fmt.Errorf("memstore: create %s: %w: duplicate hash", t.ID, apitoken.ErrConflict)
	}
	if maxPerOwner > 0 {
		live := 0
		var o apitoken.Token
		for _, slot := range s.byID {
			if !s.owns(slot, t.Owner()) {
				continue // the common case, decided without building the token
			}
			if s.fill(&o, slot); !o.Revoked() && !o.Expired(t.CreatedAt) {
				live++
			}
		}
		if live >= maxPerOwner {
			return fmt.Errorf("memstore: create %s: %w", t.ID, apitoken.ErrTooManyTokens)
		}
	}
	s.put(s.newSlot(), nil, t)
	return nil
}

// Get implements [apitoken.Store].
func (s *Store) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	slot, ok := s.byID[id]
	if !ok {
		return nil, apitoken.ErrNotFound
	}
	return s.copyOf(slot), nil
}

// GetByHash implements [apitoken.Store]. The token's slices and maps are
// shared with the store: do not modify them.
func (s *Store) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	t := new(apitoken.Token)
	if err := s.ReadByHash(ctx, h, t); err != nil {
		return nil, err
	}
	return t, nil
}

// ReadByHash implements [apitoken.HashReader]: GetByHash into dst, without
// allocating. dst's slices and maps are shared with the store: do not
// modify them.
func (s *Store) ReadByHash(_ context.Context, h apitoken.Hash, dst *apitoken.Token) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	slot, ok := s.slotOf(&h)
	if !ok {
		return apitoken.ErrNotFound
	}
	s.fill(dst, slot)
	return nil
}

// MarkUsed implements [apitoken.UseMarker]: it moves the LastUsedAt of the
// token with hash h (or previous hash h) forward to at, in place, under the
// read lock, so a Validator records uses at once instead of batching them.
// A hash no token has is not an error.
func (s *Store) MarkUsed(_ context.Context, h apitoken.Hash, at time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if slot, ok := s.slotOf(&h); ok {
		s.recs[slot].markUsed(at)
	}
	return nil
}

// Update implements [apitoken.Store].
func (s *Store) Update(ctx context.Context, t *apitoken.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.byID[t.ID]
	if !ok {
		return fmt.Errorf("memstore: update %s: %w", t.ID, apitoken.ErrNotFound)
	}
	var old apitoken.Token
	s.fill(&old, slot)
	if old.Version != t.Version {
		return fmt.Errorf("memstore: update %s: %w: version %d, stored %d", t.ID, apitoken.ErrConflict, t.Version, old.Version)
	}
	if t.Hash.IsZero() || s.hashTaken(t) {
		return fmt.Errorf("memstore: update %s: %w: hash in use", t.ID, apitoken.ErrConflict)
	}
	c := *t // shallow: put copies what it keeps
	c.Version++
	if old.LastUsedAt.After(c.LastUsedAt) {
		c.LastUsedAt = old.LastUsedAt
	}
	s.put(slot, &old, &c)
	t.Version = c.Version
	return nil
}

// Revoke implements [apitoken.Store].
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("memstore: revoke %s: %w", id, apitoken.ErrNotFound)
	}
	s.revoke(slot, at)
	return nil
}

// revoke revokes the token in slot unless it is revoked and reports whether
// it did. The caller holds s.mu for writing.
func (s *Store) revoke(slot uint32, at time.Time) bool {
	r := &s.recs[slot]
	if r.revoked() {
		return false
	}
	r.setTime(timeRevoked, at)
	r.setTime(timeUpdated, at)
	r.version++
	return true
}

// owns reports whether the token in slot belongs to o (kind and ID). The
// caller holds s.mu.
func (s *Store) owns(slot uint32, o apitoken.Owner) bool {
	return s.recs[slot].kind == o.Kind && s.str(slot, strOwner) == o.ID
}

// RevokeAll implements [apitoken.Store]: the tokens whose Kind and OwnerID
// are owner's.
func (s *Store) RevokeAll(ctx context.Context, owner apitoken.Owner, at time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, slot := range s.byID {
		if s.owns(slot, owner) && s.revoke(slot, at) {
			n++
		}
	}
	return n, nil
}

// Delete implements [apitoken.Store].
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("memstore: delete %s: %w", id, apitoken.ErrNotFound)
	}
	s.remove(slot)
	return nil
}

// List implements [apitoken.Store]. It scans every token: fine for the
// sizes this store is for.
func (s *Store) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	if err := ctx.Err(); err != nil {
		return apitoken.Page{}, err
	}
	after := ""
	if f.Cursor != "" {
		var err error
		if after, err = apitoken.DecodeCursor(f.Cursor); err != nil {
			return apitoken.Page{}, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []uint32
	var t apitoken.Token
	for id, slot := range s.byID {
		if id <= after {
			continue
		}
		s.fill(&t, slot)
		if f.Matches(&t) {
			match = append(match, slot)
		}
	}
	slices.SortFunc(match, func(a, b uint32) int { return cmp.Compare(s.id(a), s.id(b)) })
	size := f.PageSize()
	var p apitoken.Page
	if len(match) > size {
		match = match[:size]
		p.Next = apitoken.EncodeCursor(s.id(match[size-1]))
	}
	p.Tokens = make([]*apitoken.Token, len(match))
	for i, slot := range match {
		p.Tokens[i] = s.copyOf(slot)
	}
	return p, nil
}

// Touch implements [apitoken.Store]. It changes records in place: no token
// is copied.
func (s *Store) Touch(ctx context.Context, uses []apitoken.Use) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		slot, ok := s.byID[u.ID]
		if !ok {
			continue
		}
		s.recs[slot].markUsed(u.At)
	}
	return nil
}

// Prune implements [apitoken.Store].
func (s *Store) Prune(ctx context.Context, r apitoken.PruneRequest) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if r.Limit <= 0 {
		return 0, fmt.Errorf("memstore: prune: limit must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	var t apitoken.Token
	for _, slot := range s.byID {
		if n == r.Limit {
			break
		}
		if s.fill(&t, slot); r.Matches(&t) {
			s.remove(slot)
			n++
		}
	}
	return n, nil
}

// RecordPolicy implements [apitoken.PolicyRecorder]: it records id as the
// identity of the policy the store's tokens are issued under if the store
// holds none, or the fingerprint of id if it holds one with the same
// prefix, and returns the identity it held before (id itself if none).
// The zero id only reads.
func (s *Store) RecordPolicy(_ context.Context, id apitoken.PolicyID) (apitoken.PolicyID, error) {
	if id.IsZero() {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.policy, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.policy
	switch {
	case held.IsZero():
		s.policy = id
		return id, nil
	case held.Prefix == id.Prefix:
		s.policy.Fingerprint = id.Fingerprint
	}
	return held, nil
}

// String describes the store without its contents.
func (s *Store) String() string {
	return fmt.Sprintf("memstore.Store(%d tokens)", s.Len())
}
