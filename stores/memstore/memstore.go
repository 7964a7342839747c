// Package memstore is an in-memory [apitoken.Store], for tests, examples and
// small single-process apps. Nothing survives a restart.
//
// Quick start:
//
//	store := memstore.New()
//	iss, _ := apitoken.NewIssuer(store, apitoken.Policy{Prefix: "acme"})
//	v, _ := apitoken.NewValidator(store, apitoken.Policy{Prefix: "acme"})
//
// A Store is safe for concurrent use. It copies every token it is given and
// every token Get and List return, so callers cannot change stored state.
// GetByHash returns an immutable shared snapshot (records are replaced, never
// changed in place), which keeps the validation hot path free of copies.
// Only hashes are stored, never plaintext tokens.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apitoken/apitoken"
)

// Store is an in-memory token store. Use [New]; the zero value is not usable.
type Store struct {
	mu     sync.RWMutex
	byID   map[string]*apitoken.Token
	byHash map[apitoken.Hash]*apitoken.Token // Hash and PrevHash → snapshot
}

var _ apitoken.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byID:   make(map[string]*apitoken.Token),
		byHash: make(map[apitoken.Hash]*apitoken.Token),
	}
}

// Len returns the number of stored tokens.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

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
		if o, ok := s.byHash[h]; ok && o.ID != t.ID {
			return true
		}
	}
	return t.Hash == t.PrevHash
}

// put stores the snapshot t, replacing old (nil if new). The caller holds
// s.mu for writing.
func (s *Store) put(old, t *apitoken.Token) {
	s.byID[t.ID] = t
	for _, h := range hashes(t) {
		s.byHash[h] = t
	}
	if old != nil {
		for _, h := range hashes(old) {
			if h != t.Hash && h != t.PrevHash {
				delete(s.byHash, h)
			}
		}
	}
}

func (s *Store) remove(t *apitoken.Token) {
	delete(s.byID, t.ID)
	for _, h := range hashes(t) {
		delete(s.byHash, h)
	}
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
		for _, o := range s.byID {
			if o.OwnerID == t.OwnerID && !o.Revoked() && !o.Expired(t.CreatedAt) {
				live++
			}
		}
		if live >= maxPerOwner {
			return fmt.Errorf("memstore: create %s: %w", t.ID, apitoken.ErrTooManyTokens)
		}
	}
	s.put(nil, t.Clone())
	return nil
}

// Get implements [apitoken.Store].
func (s *Store) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	t, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return nil, apitoken.ErrNotFound
	}
	return t.Clone(), nil
}

// GetByHash implements [apitoken.Store]. The result is a shared, immutable
// snapshot: do not modify it.
func (s *Store) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	s.mu.RLock()
	t, ok := s.byHash[h]
	s.mu.RUnlock()
	if !ok {
		return nil, apitoken.ErrNotFound
	}
	return t, nil
}

// Update implements [apitoken.Store].
func (s *Store) Update(ctx context.Context, t *apitoken.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.byID[t.ID]
	if !ok {
		return fmt.Errorf("memstore: update %s: %w", t.ID, apitoken.ErrNotFound)
	}
	if old.Version != t.Version {
		return fmt.Errorf("memstore: update %s: %w: version %d, stored %d", t.ID, apitoken.ErrConflict, t.Version, old.Version)
	}
	if t.Hash.IsZero() || s.hashTaken(t) {
		return fmt.Errorf("memstore: update %s: %w: hash in use", t.ID, apitoken.ErrConflict)
	}
	c := t.Clone()
	c.Version++
	if old.LastUsedAt.After(c.LastUsedAt) {
		c.LastUsedAt = old.LastUsedAt
	}
	s.put(old, c)
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
	old, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("memstore: revoke %s: %w", id, apitoken.ErrNotFound)
	}
	if !old.Revoked() {
		s.revoke(old, at)
	}
	return nil
}

func (s *Store) revoke(old *apitoken.Token, at time.Time) {
	c := *old // shallow: slices and maps of snapshots are never modified
	c.RevokedAt = at
	c.UpdatedAt = at
	c.Version++
	s.put(old, &c)
}

// RevokeAll implements [apitoken.Store].
func (s *Store) RevokeAll(ctx context.Context, ownerID string, at time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.byID {
		if t.OwnerID == ownerID && !t.Revoked() {
			s.revoke(t, at)
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
	t, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("memstore: delete %s: %w", id, apitoken.ErrNotFound)
	}
	s.remove(t)
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
	var match []*apitoken.Token
	for _, t := range s.byID {
		if f.Matches(t) && t.ID > after {
			match = append(match, t)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(match, func(a, b *apitoken.Token) int { return cmp.Compare(a.ID, b.ID) })
	size := f.PageSize()
	var p apitoken.Page
	if len(match) > size {
		match = match[:size]
		p.Next = apitoken.EncodeCursor(match[size-1].ID)
	}
	p.Tokens = make([]*apitoken.Token, len(match))
	for i, t := range match {
		p.Tokens[i] = t.Clone()
	}
	return p, nil
}

// Touch implements [apitoken.Store].
func (s *Store) Touch(ctx context.Context, uses []apitoken.Use) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		old, ok := s.byID[u.ID]
		if !ok || !u.At.After(old.LastUsedAt) {
			continue
		}
		c := *old
		c.LastUsedAt = u.At
		s.put(old, &c)
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
	for _, t := range s.byID {
		if n == r.Limit {
			break
		}
		if r.Matches(t) {
			s.remove(t)
			n++
		}
	}
	return n, nil
}

// String describes the store without its contents.
func (s *Store) String() string {
	return fmt.Sprintf("memstore.Store(%d tokens)", s.Len())
}
