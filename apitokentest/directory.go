package apitokentest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/apitoken/apitoken"
)

// A Directory is an [apitoken.Directory] a test sets by hand: user → org →
// membership. A user with no membership in an org is [apitoken.ErrNotFound]
// there, as the Directory contract asks. The zero Directory is empty and
// ready to use; it is safe for concurrent use.
type Directory struct {
	mu      sync.Mutex
	members map[string]map[string]apitoken.Membership
	err     error
}

var _ apitoken.Directory = (*Directory)(nil)

// Member returns userID's membership in org: the error set by SetError if
// there is one, else ErrNotFound if Set gave none.
func (d *Directory) Member(_ context.Context, userID, org string) (apitoken.Membership, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return apitoken.Membership{}, d.err
	}
	m, ok := d.members[userID][org]
	if !ok {
		return apitoken.Membership{}, apitoken.ErrNotFound
	}
	return m, nil
}

// Set gives userID the membership m in org, replacing any earlier one. It
// copies m's slices and map.
func (d *Directory) Set(userID, org string, m apitoken.Membership) {
	m = apitoken.Membership{
		Roles:     slices.Clone(m.Roles),
		Grants:    maps.Clone(m.Grants),
		Resources: slices.Clone(m.Resources),
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.members == nil {
		d.members = map[string]map[string]apitoken.Membership{}
	}
	if d.members[userID] == nil {
		d.members[userID] = map[string]apitoken.Membership{}
	}
	d.members[userID][org] = m
}

// Remove takes away userID's membership in org, as when a user leaves an
// org or is disabled: their tokens stop working there at once.
func (d *Directory) Remove(userID, org string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.members[userID], org)
}

// SetError makes every Member call fail with err, as a directory that
// cannot answer (the Validator then fails closed with
// ErrStoreUnavailable); SetError(nil) restores it.
func (d *Directory) SetError(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}
