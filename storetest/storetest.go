package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken/apitoken"
)

// Version is the version of the suite. It grows by one whenever a clause
// that tightens the [apitoken.Store] contract is added. Version 2: owners
// have kinds (RevokeAll, Filter.Owner and the per-owner bound match Kind and
// OwnerID), IssuedAt round-trips, LookupLimiter.Refund, Decision.ResetAfter,
// and the lifecycle clauses run through an [apitoken.Issuer]. Version 3:
// Prune's IdleBefore and EndedBefore are exclusive to the nanosecond (a
// store that keeps microseconds rounds them up, so a token last active or
// ended at T is pruned by T+1ns: Prune/IdleBeforeIsExclusive,
// Prune/EndedBeforeIsExclusive).
const Version = 3

// Run checks the store newStore returns against every clause of the
// [apitoken.Store] contract, one subtest per clause, named "Group/Clause"
// after the method and the sentence it checks.
//
// newStore must return a fresh, empty store each time it is called (once
// per subtest, possibly from parallel subtests) and register with t.Cleanup
// whatever closing the store needs. Subtests call t.Parallel; Run itself
// does not, so the caller decides whether its test runs in parallel with
// others.
func Run(t *testing.T, newStore func(t *testing.T) apitoken.Store) {
	t.Helper()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.clauses {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned nil")
					}
					c.test(t, s)
				})
			}
		})
	}
}

// Namespace returns a new random name, unique with overwhelming probability,
// for keeping the data of one test apart from others on a shared server: 16
// characters of [a-z0-9_], starting with a letter and ending with a letter
// or digit, so it can serve as a Redis key prefix, an SQL schema or table
// name prefix, or a database name. Each call returns a different name.
func Namespace(t testing.TB) string {
	t.Helper()
	// rand.Text is at least 26 characters of [A-Z2-7] (128 bits); 13 of
	// them carry 65 bits.
	return "st_" + strings.ToLower(rand.Text()[:13])
}

type clause struct {
	name string
	test func(t *testing.T, s apitoken.Store)
}

type group struct {
	name    string
	clauses []clause
}

// groups lists every clause, grouped by Store method, in the order of the
// Store documentation.
func groups() []group {
	return []group{
		{"Create", slices.Concat(createClauses(), createInstantClauses())},
		{"Get", getClauses()},
		{"GetByHash", getByHashClauses()},
		{"ReadByHash", readByHashClauses()},
		{"GetByHashAllow", slices.Concat(lookupLimiterClauses(), lookupLimiterInstantClauses())},
		{"Refund", refundClauses()},
		{"Update", updateClauses()},
		{"Revoke", revokeClauses()},
		{"RevokeAll", slices.Concat(revokeAllClauses(), revokeAllScaleClauses())},
		{"Delete", deleteClauses()},
		{"List", listClauses()},
		{"Touch", touchClauses()},
		{"MarkUsed", markUsedClauses()},
		{"RecordPolicy", recordPolicyClauses()},
		{"Prune", slices.Concat(pruneClauses(), pruneInstantClauses(), pruneScaleClauses())},
		{"LastUsed", lastUsedClauses()},
		{"IssuedAt", issuedAtClauses()},
		{"Expiry", expiryClauses()},
		{"Concurrent", slices.Concat(concurrentClauses(), revokeScaleClauses(), rotationClauses())},
		{"Model", modelClauses()},
	}
}

// capability returns s as the optional capability T, or skips the clause
// when the store does not implement it.
func capability[T any](t *testing.T, s apitoken.Store) T {
	t.Helper()
	c, ok := s.(T)
	if !ok {
		t.Skipf("the store does not implement %v (optional)", reflect.TypeFor[T]())
	}
	return c
}

// now is the fixed instant every clause measures from. It is a whole
// second, so every instant derived from it by whole seconds or larger
// survives a store that keeps microseconds.
var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const day = 24 * time.Hour

// newToken returns a valid user token of "user_1" in "org_1", created at
// now, with a fresh UUID v7 ID (IDs made later sort later) and a random
// hash.
func newToken(t testing.TB) *apitoken.Token {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid.NewV7: %v", err)
	}
	return &apitoken.Token{
		ID:        id.String(),
		Kind:      apitoken.KindUser,
		OwnerID:   "user_1",
		OrgID:     "org_1",
		Name:      "test token",
		Hint:      "tok_test…0000",
		Hash:      randomHash(),
		CreatedAt: now,
		CreatedBy: "user:creator",
		UpdatedAt: now,
		Version:   1,
	}
}

// newID returns a fresh UUID v7 string for a token that is never created.
func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid.NewV7: %v", err)
	}
	return id.String()
}

// randomHash returns a random, nonzero hash.
func randomHash() apitoken.Hash {
	var h apitoken.Hash
	for h.IsZero() {
		rand.Read(h[:]) // never fails (Go 1.24+)
	}
	return h
}

// create stores toks with no per-owner bound, failing the test on error.
func create(t testing.TB, s apitoken.Store, toks ...*apitoken.Token) {
	t.Helper()
	for _, tok := range toks {
		if err := s.Create(t.Context(), tok, 0); err != nil {
			t.Fatalf("Create(%s) error = %v, want nil", tok.ID, err)
		}
	}
}

// get returns the stored token with the given ID, failing the test on error.
func get(t testing.TB, s apitoken.Store, id string) *apitoken.Token {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s) error = %v, want nil", id, err)
	}
	if got == nil {
		t.Fatalf("Get(%s) = nil, nil; want a token", id)
	}
	return got
}

// getByHash returns the token with hash h, failing the test on error.
func getByHash(t testing.TB, s apitoken.Store, h apitoken.Hash, what string) *apitoken.Token {
	t.Helper()
	got, err := s.GetByHash(t.Context(), h)
	if err != nil {
		t.Fatalf("GetByHash(%s) error = %v, want nil", what, err)
	}
	if got == nil {
		t.Fatalf("GetByHash(%s) = nil, nil; want a token", what)
	}
	if r, ok := s.(apitoken.HashReader); ok {
		var read apitoken.Token
		if err := r.ReadByHash(t.Context(), h, &read); err != nil {
			t.Fatalf("ReadByHash(%s) error = %v, want nil (GetByHash found it)", what, err)
		}
		wantSame(t, "ReadByHash("+what+")", &read, got)
	}
	return got
}

// wantErr reports an error unless errors.Is(err, want).
func wantErr(t testing.TB, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", call, err, want)
	}
}

// wantNotFound reports an error unless Get(id) is ErrNotFound.
func wantNotFound(t testing.TB, s apitoken.Store, id, why string) {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Get(%s) %s: token = %v, error = %v; want error %v", id, why, describe(got), err, apitoken.ErrNotFound)
	}
}

// wantHashNotFound reports an error unless GetByHash(h) is ErrNotFound.
func wantHashNotFound(t testing.TB, s apitoken.Store, h apitoken.Hash, what string) {
	t.Helper()
	got, err := s.GetByHash(t.Context(), h)
	if !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetByHash(%s): token = %v, error = %v; want error %v", what, describe(got), err, apitoken.ErrNotFound)
	}
	if r, ok := s.(apitoken.HashReader); ok {
		if err := r.ReadByHash(t.Context(), h, new(apitoken.Token)); !errors.Is(err, apitoken.ErrNotFound) {
			t.Errorf("ReadByHash(%s) error = %v, want %v", what, err, apitoken.ErrNotFound)
		}
	}
}

// wantTime reports an error unless got and want are the same instant.
func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, fmtTime(got), fmtTime(want))
	}
}

func fmtTime(tm time.Time) string {
	if tm.IsZero() {
		return "zero time"
	}
	return tm.UTC().Format(time.RFC3339Nano)
}

// describe names a token in a failure message without its hashes.
func describe(t *apitoken.Token) string {
	if t == nil {
		return "nil"
	}
	return fmt.Sprintf("{ID %s, Owner %s, Version %d}", t.ID, t.Owner(), t.Version)
}

// wantSame reports every field in which got differs from want. Times are
// compared as instants; nil and empty slices and maps are equal.
func wantSame(t testing.TB, what string, got, want *apitoken.Token) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %s", what, describe(want))
		return
	}
	if d := diff(got, want); len(d) > 0 {
		t.Errorf("%s differs from the token stored:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

func diff(got, want *apitoken.Token) []string {
	var d []string
	add := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w))
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Kind != want.Kind {
		add("Kind", got.Kind, want.Kind)
	}
	if got.OwnerID != want.OwnerID {
		add("OwnerID", got.OwnerID, want.OwnerID)
	}
	if got.OrgID != want.OrgID {
		add("OrgID", got.OrgID, want.OrgID)
	}
	if got.Name != want.Name {
		add("Name", got.Name, want.Name)
	}
	if got.Description != want.Description {
		add("Description", got.Description, want.Description)
	}
	if !slices.Equal(got.Roles, want.Roles) {
		add("Roles", got.Roles, want.Roles)
	}
	if !maps.Equal(got.Grants, want.Grants) {
		add("Grants", got.Grants, want.Grants)
	}
	if !slices.Equal(got.Resources, want.Resources) {
		add("Resources", got.Resources, want.Resources)
	}
	if got.IPFilter.Name != want.IPFilter.Name || !slices.Equal(got.IPFilter.Prefixes, want.IPFilter.Prefixes) {
		add("IPFilter", got.IPFilter, want.IPFilter)
	}
	switch g, w := got.RateLimit, want.RateLimit; {
	case g == nil && w == nil:
	case g == nil || w == nil || *g != *w:
		add("RateLimit", fmtLimit(g), fmtLimit(w))
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		add("Metadata", got.Metadata, want.Metadata)
	}
	if got.Hint != want.Hint {
		add("Hint", got.Hint, want.Hint)
	}
	if got.CreatedBy != want.CreatedBy {
		add("CreatedBy", got.CreatedBy, want.CreatedBy)
	}
	// Hashes are not secret, but are kept out of messages all the same.
	if got.Hash != want.Hash {
		add("Hash", "a different hash", "the hash created")
	}
	if got.PrevHash != want.PrevHash {
		add("PrevHash", zeroOr(got.PrevHash.IsZero(), "a different hash"), zeroOr(want.PrevHash.IsZero(), "the hash created"))
	}
	if !bytes.Equal(got.Sealed, want.Sealed) {
		add("Sealed", fmt.Sprintf("%d bytes", len(got.Sealed)), fmt.Sprintf("%d other bytes", len(want.Sealed)))
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"PrevExpiresAt", got.PrevExpiresAt, want.PrevExpiresAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"IssuedAt", got.IssuedAt, want.IssuedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"LastUsedAt", got.LastUsedAt, want.LastUsedAt},
		{"RevokedAt", got.RevokedAt, want.RevokedAt},
	} {
		if !f.got.Equal(f.want) {
			add(f.name, fmtTime(f.got), fmtTime(f.want))
		}
	}
	if got.Version != want.Version {
		add("Version", got.Version, want.Version)
	}
	return d
}

func zeroOr(zero bool, s string) string {
	if zero {
		return "zero"
	}
	return s
}

func fmtLimit(l *apitoken.Limit) string {
	if l == nil {
		return "nil"
	}
	return fmt.Sprintf("%+v", *l)
}
