package memstore

import (
	"encoding/json"

	"github.com/apitoken/apitoken"
)

// shape is the part of a token that holds pointers: its privileges,
// restrictions, metadata and sealed secret. Tokens with equal shapes share
// one, so a million tokens of a few kinds keep a few shapes, not a million
// sets of slices and maps. A shape is never modified once interned.
type shape struct {
	roles     []string
	grants    apitoken.Grants
	resources []string
	ipFilter  apitoken.IPFilter
	rateLimit *apitoken.Limit
	metadata  map[string]string
	sealed    []byte

	key  string // identity in shapes.index
	refs int    // tokens using it
}

// shapes interns shapes. Index 0 is the empty shape (everything nil),
// shared by every token without roles, grants and the rest; it is never
// freed. Not safe for concurrent use: the Store's lock guards it.
type shapes struct {
	list  []*shape
	index map[string]uint32
	free  []uint32
}

func newShapes() shapes {
	return shapes{list: []*shape{{}}, index: make(map[string]uint32)}
}

// shapeKey is the identity of a token's shape: a canonical encoding that
// tells nil from empty (null from [] or {}) and sorts map keys.
func shapeKey(t *apitoken.Token) (string, bool) {
	if t.Roles == nil && t.Grants == nil && t.Resources == nil && t.IPFilter.Name == "" &&
		t.IPFilter.Prefixes == nil && t.RateLimit == nil && t.Metadata == nil && t.Sealed == nil {
		return "", false
	}
	b, err := json.Marshal([]any{t.Roles, t.Grants, t.Resources, t.IPFilter.Name, t.IPFilter.Prefixes, t.RateLimit, t.Metadata, t.Sealed})
	if err != nil {
		// Only a rate limit of NaN or ±Inf fails; such a shape is never
		// shared.
		return "", true
	}
	return string(b), true
}

// intern returns the index of t's shape, adding a copy of it if new, and
// counts t as one of its users.
func (s *shapes) intern(t *apitoken.Token) uint32 {
	key, ok := shapeKey(t)
	if !ok {
		return 0
	}
	if i, ok := s.index[key]; ok && key != "" {
		s.list[i].refs++
		return i
	}
	c := t.Clone()
	sh := &shape{
		roles: c.Roles, grants: c.Grants, resources: c.Resources, ipFilter: c.IPFilter,
		rateLimit: c.RateLimit, metadata: c.Metadata, sealed: c.Sealed, key: key, refs: 1,
	}
	var i uint32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
		s.list[i] = sh
	} else {
		i = uint32(len(s.list))
		s.list = append(s.list, sh)
	}
	if key != "" {
		s.index[key] = i
	}
	return i
}

// release drops one user of shape i, freeing it when it has none.
func (s *shapes) release(i uint32) {
	if i == 0 {
		return
	}
	sh := s.list[i]
	if sh.refs--; sh.refs > 0 {
		return
	}
	if sh.key != "" {
		delete(s.index, sh.key)
	}
	s.list[i] = nil
	s.free = append(s.free, i)
}
