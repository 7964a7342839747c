package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// Clauses that run the token lifecycle through the root package's Issuer
// and Validator on the store, and the IssuedAt clauses.

// lifecyclePolicy is the policy of the Issuer and Validator the lifecycle
// clauses build: defaults everywhere, no hash keys.
var lifecyclePolicy = apitoken.Policy{Prefix: "st"}

// services returns an Issuer and a Validator on s under lifecyclePolicy;
// the Validator is closed when the test ends.
func services(t *testing.T, s apitoken.Store) (*apitoken.Issuer, *apitoken.Validator) {
	t.Helper()
	iss, err := apitoken.NewIssuer(s, lifecyclePolicy)
	if err != nil {
		t.Fatalf("NewIssuer error = %v, want nil", err)
	}
	v, err := apitoken.NewValidator(s, lifecyclePolicy)
	if err != nil {
		t.Fatalf("NewValidator error = %v, want nil", err)
	}
	// Registered after newStore's cleanup, so it runs before the store
	// closes; t.Context() is already cancelled by then.
	t.Cleanup(func() { v.Close(context.Background()) })
	return iss, v
}

// issueOrgToken issues an org token of org_1 with the policy's defaults.
func issueOrgToken(t *testing.T, iss *apitoken.Issuer) (apitoken.Secret, *apitoken.Token) {
	t.Helper()
	secret, tok, err := iss.Issue(t.Context(), apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "rotated"})
	if err != nil {
		t.Fatalf("Issue error = %v, want nil", err)
	}
	return secret, tok
}

// orgRequest is a request of org_1 that needs no access level.
var orgRequest = apitoken.Request{Org: "org_1"}

// wantValid reports an error unless secret validates as the token id.
func wantValid(t testing.TB, v *apitoken.Validator, what string, secret apitoken.Secret, id string) {
	t.Helper()
	p, err := v.Validate(t.Context(), secret.Reveal(), orgRequest)
	if err != nil {
		t.Errorf("Validate(%s) error = %v, want nil", what, err)
		return
	}
	if p.TokenID != id {
		t.Errorf("Validate(%s) = token %s, want %s", what, p.TokenID, id)
	}
}

// wantInvalid reports an error unless secret fails validation as unknown.
func wantInvalid(t testing.TB, v *apitoken.Validator, what string, secret apitoken.Secret) {
	t.Helper()
	if _, err := v.Validate(t.Context(), secret.Reveal(), orgRequest); !errors.Is(err, apitoken.ErrUnknown) {
		t.Errorf("Validate(%s) error = %v, want %v (a replaced secret without grace stops at once)", what, err, apitoken.ErrUnknown)
	}
}

// testConcurrentRegenerate: concurrent Regenerates of one token each
// replace the secret in turn (or fail with ErrConflict once the Issuer's
// retries are spent), so exactly one secret, the last one issued, stays
// live, and the Version rises once per success.
func testConcurrentRegenerate(t *testing.T, s apitoken.Store) {
	const n = 50
	ctx := t.Context()
	iss, v := services(t, s)
	first, tok := issueOrgToken(t, iss)
	secrets := make([]apitoken.Secret, n)
	toks := make([]*apitoken.Token, n)
	errs := make([]error, n)
	race(n, func(i int) { secrets[i], toks[i], errs[i] = iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}) })

	var wins []int // indexes of the successful calls
	for i, err := range errs {
		switch {
		case err == nil:
			wins = append(wins, i)
		case !errors.Is(err, apitoken.ErrConflict):
			t.Errorf("Regenerate %d of %d concurrent error = %v, want nil or %v", i, n, err, apitoken.ErrConflict)
		case secrets[i] != (apitoken.Secret{}):
			t.Errorf("Regenerate %d of %d concurrent failed with %v but returned a secret, want the zero Secret", i, n, err)
		}
	}
	if len(wins) == 0 {
		t.Fatalf("none of %d concurrent Regenerates succeeded, want at least 1", n)
	}
	// Each success wrote one version: v+1 … v+len(wins), in the order
	// they committed.
	slices.SortFunc(wins, func(a, b int) int { return cmp.Compare(toks[a].Version, toks[b].Version) })
	for k, i := range wins {
		if want := tok.Version + int64(k+1); toks[i].Version != want {
			t.Errorf("Versions returned by %d successful Regenerates = %v, want %d … %d, one per success",
				len(wins), versions(toks, wins), tok.Version+1, tok.Version+int64(len(wins)))
			break
		}
	}
	last := wins[len(wins)-1]
	got := get(t, s, tok.ID)
	if want := tok.Version + int64(len(wins)); got.Version != want {
		t.Errorf("stored Version after %d successful Regenerates from version %d = %d, want %d", len(wins), tok.Version, got.Version, want)
	}
	if got.Hash != toks[last].Hash {
		t.Errorf("stored Hash after the Regenerates is not the last one's (version %d)", toks[last].Version)
	}
	if !got.PrevHash.IsZero() {
		t.Errorf("stored PrevHash after Regenerates without grace is set, want zero")
	}
	wantInvalid(t, v, "the secret Issue returned", first)
	for _, i := range wins {
		what := fmt.Sprintf("the secret of the Regenerate that wrote version %d of %d", toks[i].Version, got.Version)
		if i == last {
			wantValid(t, v, what, secrets[i], tok.ID)
		} else {
			wantInvalid(t, v, what, secrets[i])
		}
	}
}

func versions(toks []*apitoken.Token, idx []int) []int64 {
	out := make([]int64, len(idx))
	for k, i := range idx {
		out[k] = toks[i].Version
	}
	return out
}

// testConcurrentConditionalRegenerate: of many Regenerates conditioned on
// one version, exactly one succeeds; the others fail with ErrConflict and
// return no secret.
func testConcurrentConditionalRegenerate(t *testing.T, s apitoken.Store) {
	const n = 50
	ctx := t.Context()
	iss, v := services(t, s)
	first, tok := issueOrgToken(t, iss)
	secrets := make([]apitoken.Secret, n)
	toks := make([]*apitoken.Token, n)
	errs := make([]error, n)
	race(n, func(i int) {
		secrets[i], toks[i], errs[i] = iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}, apitoken.WithIfVersion(tok.Version))
	})
	w := wantOneWinner(t, fmt.Sprintf("%d Regenerates conditioned on version %d", n, tok.Version), errs, apitoken.ErrConflict)
	for i, err := range errs {
		if err != nil && secrets[i] != (apitoken.Secret{}) {
			t.Errorf("Regenerate %d failed with %v but returned a secret, want the zero Secret", i, err)
		}
	}
	got := get(t, s, tok.ID)
	if got.Version != tok.Version+1 {
		t.Errorf("stored Version after %d Regenerates conditioned on version %d = %d, want %d", n, tok.Version, got.Version, tok.Version+1)
	}
	if w < 0 {
		return
	}
	if toks[w] == nil || toks[w].Version != tok.Version+1 || got.Hash != toks[w].Hash {
		t.Errorf("the winning Regenerate's token is not the one stored")
	}
	wantValid(t, v, "the winner's secret", secrets[w], tok.ID)
	wantInvalid(t, v, "the secret Issue returned", first)
}

func issuedAtClauses() []clause {
	return []clause{
		{"RoundTrips", testIssuedAtRoundTrips},
	}
}

// testIssuedAtRoundTrips: IssuedAt comes back from Create, Update, Get,
// GetByHash (and ReadByHash, GetByHashAllow where the store has them) and
// List as it was stored; a record without it (zero) comes back zero, so
// [apitoken.Token.SecretIssuedAt] falls back to CreatedAt. Revoke and
// Touch keep it.
func testIssuedAtRoundTrips(t *testing.T, s apitoken.Store) {
	ctx := t.Context()
	issued, old, same := newToken(t), newToken(t), newToken(t)
	issued.IssuedAt = now.Add(30 * time.Second)
	old.Name = "a record without IssuedAt"
	same.IssuedAt = same.CreatedAt
	toks := []*apitoken.Token{issued, old, same}
	create(t, s, toks...)
	check := func(when string, toks ...*apitoken.Token) {
		t.Helper()
		for _, tok := range toks {
			name := fmt.Sprintf("%s (IssuedAt %s) %s", tok.Name, fmtTime(tok.IssuedAt), when)
			wantTime(t, "Get("+name+").IssuedAt", get(t, s, tok.ID).IssuedAt, tok.IssuedAt)
			wantTime(t, "GetByHash("+name+").IssuedAt", getByHash(t, s, tok.Hash, name).IssuedAt, tok.IssuedAt)
			if ll, ok := s.(apitoken.LookupLimiter); ok {
				got, _, err := ll.GetByHashAllow(ctx, tok.Hash, apitoken.LimitDefaults{}, now)
				if err != nil {
					t.Errorf("GetByHashAllow(%s) error = %v, want nil", name, err)
				} else {
					wantTime(t, "GetByHashAllow("+name+").IssuedAt", got.IssuedAt, tok.IssuedAt)
				}
			}
		}
		listed := listAll(t, s, apitoken.Filter{Owner: apitoken.UserOwner("user_1")})
		for _, tok := range toks {
			i := slices.IndexFunc(listed, func(x *apitoken.Token) bool { return x.ID == tok.ID })
			if i < 0 {
				t.Errorf("List %s: token %s missing", when, tok.ID)
				continue
			}
			wantTime(t, "List "+when+": IssuedAt of "+tok.Name, listed[i].IssuedAt, tok.IssuedAt)
		}
	}
	check("after Create", toks...)
	if got := get(t, s, old.ID).SecretIssuedAt(); !got.Equal(old.CreatedAt) {
		t.Errorf("SecretIssuedAt of a record without IssuedAt = %v, want CreatedAt %v", fmtTime(got), fmtTime(old.CreatedAt))
	}

	// A Regenerate writes a new IssuedAt with Update.
	for _, tok := range []*apitoken.Token{issued, old} {
		tok.IssuedAt = now.Add(time.Hour)
		tok.Hash = randomHash()
		if err := s.Update(ctx, tok); err != nil {
			t.Fatalf("Update(%s with a new secret) error = %v, want nil", tok.Name, err)
		}
	}
	check("after Update", issued, old)

	if err := s.Revoke(ctx, same.ID, now.Add(2*time.Hour)); err != nil {
		t.Fatalf("Revoke error = %v, want nil", err)
	}
	touch(t, s, apitoken.Use{ID: issued.ID, At: now.Add(3 * time.Hour)})
	check("after Revoke and Touch", toks...)
}
