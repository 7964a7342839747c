package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
	"github.com/google/uuid"
)

func TestIssue(t *testing.T) {
	e := newEnv(t, testPolicy())
	s, tok, err := e.iss.Issue(context.Background(), orgSpec())
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(tok.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("ID = %q, want a UUID v7", tok.ID)
	}
	if !strings.HasPrefix(s.Reveal(), "acme_") || len(s.Reveal()) != len("acme_")+apitoken.BodyLen+apitoken.ChecksumLen {
		t.Errorf("secret %q: want acme_ + %d characters", s.Hint(), apitoken.BodyLen+apitoken.ChecksumLen)
	}
	if tok.Hint != s.Hint() || !strings.Contains(tok.Hint, "…") {
		t.Errorf("Hint = %q, want %q", tok.Hint, s.Hint())
	}
	if want := time.Date(2026, 7, 31, 12, 0, 0, 0, time.UTC); !tok.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v (default 6 months)", tok.ExpiresAt, want)
	}
	if tok.Version != 1 || !tok.CreatedAt.Equal(t0) || tok.OwnerID != "org_1" || tok.Hash.IsZero() || tok.Sealed != nil {
		t.Errorf("record = %+v", tok)
	}
	stored, err := e.iss.Get(context.Background(), tok.ID)
	if err != nil || stored.Hash != tok.Hash {
		t.Errorf("Get = %+v, %v; want the issued record", stored, err)
	}
}

func TestIssueDefaultRoles(t *testing.T) {
	pol := testPolicy()
	pol.DefaultRoles = []string{"observer"}
	e := newEnv(t, pol)
	spec := orgSpec()
	spec.Roles = nil
	_, tok := e.issue(t, spec)
	if len(tok.Roles) != 1 || tok.Roles[0] != "observer" {
		t.Errorf("Roles = %v, want [observer]", tok.Roles)
	}
}

// TestIssuePolicyViolations: each broken rule is a *PolicyError naming it, and
// nothing is stored.
func TestIssuePolicyViolations(t *testing.T) {
	pol := testPolicy()
	pol.MaxLifetime = apitoken.Months(12)
	pol.AllowedLifetimes = []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12), apitoken.Days(30)}
	strict := testPolicy()
	strict.RequireIPFilter = true
	strict.AllowInlineIPFilter = false
	strict.RequireExpiry = true
	tests := []struct {
		name string
		pol  apitoken.Policy
		spec func(*apitoken.Spec)
		rule string
	}{
		{"no kind", pol, func(s *apitoken.Spec) { s.Kind = 0 }, "Kind"},
		{"org token without org", pol, func(s *apitoken.Spec) { s.OrgID = "" }, "OrgID"},
		{"org token owned by other", pol, func(s *apitoken.Spec) { s.OwnerID = "u1" }, "OwnerID"},
		{"user token without user", pol, func(s *apitoken.Spec) { s.Kind = apitoken.KindUser; s.OwnerID = "" }, "OwnerID"},
		{"no name", pol, func(s *apitoken.Spec) { s.Name = "" }, "Name"},
		{"long name", pol, func(s *apitoken.Spec) { s.Name = strings.Repeat("x", apitoken.MaxNameLen+1) }, "Name"},
		{"control character", pol, func(s *apitoken.Spec) { s.Name = "ci\x1b[2J" }, "Name"},
		{"invalid UTF-8", pol, func(s *apitoken.Spec) { s.Description = "\xff" }, "Description"},
		{"unknown role", pol, func(s *apitoken.Spec) { s.Roles = []string{"root"} }, "Roles"},
		{"bad grant", pol, func(s *apitoken.Spec) { s.Grants = apitoken.Grants{"": apitoken.AccessRead} }, "Grants"},
		{"bad level", pol, func(s *apitoken.Spec) { s.Grants = apitoken.Grants{"x": 7} }, "Grants"},
		{"empty resource", pol, func(s *apitoken.Spec) { s.Resources = []string{""} }, "Resources"},
		{"lifetime not allowed", pol, func(s *apitoken.Spec) { s.Lifetime = apitoken.Months(2) }, "AllowedLifetimes"},
		{"no expiry", pol, func(s *apitoken.Spec) { s.Lifetime = apitoken.NoExpiry }, "RequireExpiry"},
		{"over maximum", apitoken.Policy{Prefix: "acme", MaxLifetime: apitoken.Days(90)}, func(s *apitoken.Spec) {
			s.Roles = nil
			s.Lifetime = apitoken.Months(4)
		}, "MaxLifetime"},
		{"unknown IP filter", pol, func(s *apitoken.Spec) { s.IPFilter = "home" }, "IPFilters"},
		{"both filters", pol, func(s *apitoken.Spec) {
			s.IPFilter = "office"
			s.IPPrefixes = []string{"10.0.0.0/8"}
		}, "IPFilter"},
		{"unmasked prefix", pol, func(s *apitoken.Spec) { s.IPPrefixes = []string{"10.1.2.3/8"} }, "IPPrefixes"},
		{"IP filter required", strict, nil, "RequireIPFilter"},
		{"inline not allowed", strict, func(s *apitoken.Spec) { s.IPPrefixes = []string{"10.0.0.0/8"} }, "AllowInlineIPFilter"},
		{"expiry required", strict, func(s *apitoken.Spec) { s.IPFilter = "office"; s.Lifetime = apitoken.NoExpiry }, "RequireExpiry"},
		{"bad rate limit", pol, func(s *apitoken.Spec) { s.RateLimit = &apitoken.Limit{Rate: 5} }, "RateLimit"},
		{"too much metadata", pol, func(s *apitoken.Spec) {
			s.Metadata = map[string]string{}
			for i := range apitoken.MaxMetadataKeys + 1 {
				s.Metadata[strings.Repeat("k", i+1)] = "v"
			}
		}, "Metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.pol)
			spec := orgSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			s, tok, err := e.iss.Issue(context.Background(), spec)
			var pe *apitoken.PolicyError
			if !errors.As(err, &pe) || pe.Rule != tc.rule || !only(err, apitoken.ErrPolicy) {
				t.Fatalf("Issue = %v, want a PolicyError for rule %s", err, tc.rule)
			}
			if !s.IsZero() || tok != nil || e.mem.Len() != 0 {
				t.Errorf("failed Issue returned a secret %v or token %v, or stored %d", !s.IsZero(), tok != nil, e.mem.Len())
			}
		})
	}
}

func TestIssueAllowedLifetimes(t *testing.T) {
	pol := testPolicy()
	pol.AllowedLifetimes = []apitoken.Lifetime{apitoken.Months(3), apitoken.Months(6), apitoken.Months(12)}
	e := newEnv(t, pol)
	for _, l := range pol.AllowedLifetimes {
		spec := orgSpec()
		spec.Lifetime = l
		_, tok := e.issue(t, spec)
		if want := l.ExpiresAt(t0); !tok.ExpiresAt.Equal(want) {
			t.Errorf("Issue(%v).ExpiresAt = %v, want %v", l, tok.ExpiresAt, want)
		}
	}
}

func TestMaxTokensPerOwner(t *testing.T) {
	ctx := context.Background()
	pol := testPolicy()
	pol.MaxTokensPerOwner = 2
	e := newEnv(t, pol)
	_, first := e.issue(t, orgSpec())
	e.issue(t, orgSpec())
	_, _, err := e.iss.Issue(ctx, orgSpec())
	var pe *apitoken.PolicyError
	if !errors.As(err, &pe) || pe.Rule != "MaxTokensPerOwner" || !errors.Is(err, apitoken.ErrTooManyTokens) || !errors.Is(err, apitoken.ErrPolicy) {
		t.Fatalf("third Issue = %v, want MaxTokensPerOwner policy error", err)
	}
	// Another owner is not affected; a revoked token frees a slot.
	other := orgSpec()
	other.OrgID = "org_2"
	e.issue(t, other)
	require.NoError(t, e.iss.Revoke(ctx, first.ID))
	e.issue(t, orgSpec())
}

func TestNoEscalation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	e.dir.set("u1", "org_1", &apitoken.Membership{Roles: []string{"operator"}, Resources: []string{"site-a"}})
	us, _ := e.issue(t, userSpec("u1"))
	by, err := e.v.Validate(ctx, us, apitoken.Request{Org: "org_1"})
	require.NoError(t, err)
	tests := []struct {
		name string
		spec func(*apitoken.Spec)
		ok   bool
	}{
		{"within", func(s *apitoken.Spec) { s.Roles = []string{"operator"}; s.Resources = []string{"site-a"} }, true},
		{"less", func(s *apitoken.Spec) {
			s.Roles = nil
			s.Grants = apitoken.Grants{"devices": apitoken.AccessRead}
			s.Resources = []string{"site-a"}
		}, true},
		{"role it lacks", func(s *apitoken.Spec) { s.Roles = []string{"admin"}; s.Resources = []string{"site-a"} }, false},
		{"role it lacks, same grants", func(s *apitoken.Spec) { s.Roles = []string{"observer"}; s.Resources = []string{"site-a"} }, false},
		{"more access", func(s *apitoken.Spec) {
			s.Roles = nil
			s.Grants = apitoken.Grants{"sites": apitoken.AccessFull}
			s.Resources = []string{"site-a"}
		}, false},
		{"all APIs", func(s *apitoken.Spec) {
			s.Roles = nil
			s.Grants = apitoken.Grants{apitoken.AllAPIs: apitoken.AccessRead}
			s.Resources = []string{"site-a"}
		}, false},
		{"all resources", func(s *apitoken.Spec) { s.Roles = []string{"operator"} }, false},
		{"other resource", func(s *apitoken.Spec) { s.Roles = []string{"operator"}; s.Resources = []string{"site-b"} }, false},
	}
	for _, tc := range tests {
		spec := orgSpec()
		spec.IssuedBy = by
		tc.spec(&spec)
		_, _, err := e.iss.Issue(ctx, spec)
		var pe *apitoken.PolicyError
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &pe) || pe.Rule != "NoEscalation") {
			t.Errorf("%s: Issue = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestIssueRandomFailure(t *testing.T) {
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithRand(failReader{}))
	require.NoError(t, err)
	s, tok, err := iss.Issue(context.Background(), orgSpec())
	if !errors.Is(err, apitoken.ErrRandom) || !s.IsZero() || tok != nil || store.Len() != 0 {
		t.Fatalf("Issue with failing randomness = %v, %v, %v; want ErrRandom and nothing stored", s, tok, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	secret, tok := e.issue(t, orgSpec())
	e.clock.Advance(time.Hour)
	got, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{
		Name:        ptr("nightly"),
		Description: ptr("runs at 2am"),
		Roles:       ptr([]string{"operator"}),
		Lifetime:    ptr(apitoken.Days(7)),
		IPFilter:    &apitoken.IPFilter{Name: "office"},
		RateLimit:   &apitoken.Limit{Rate: 2, Burst: 4},
		Metadata:    ptr(map[string]string{"team": "infra"}),
	})
	if err != nil {
		t.Fatalf("Update = %v", err)
	}
	if got.Name != "nightly" || got.Description != "runs at 2am" || got.Roles[0] != "operator" || got.IPFilter.Name != "office" ||
		got.RateLimit.Burst != 4 || got.Metadata["team"] != "infra" || got.Version != 2 || !got.UpdatedAt.Equal(t0.Add(time.Hour)) ||
		!got.ExpiresAt.Equal(t0.Add(time.Hour+7*24*time.Hour)) || got.Hash != tok.Hash {
		t.Errorf("Update result = %+v", got)
	}
	// The secret is unchanged and the new privileges apply.
	if _, err := e.v.Validate(ctx, secret, apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessFull}); err != nil {
		t.Errorf("Validate after Update = %v, want nil", err)
	}
	got, err = e.iss.Update(ctx, tok.ID, apitoken.Patch{ResetRateLimit: true, IPFilter: &apitoken.IPFilter{}})
	if err != nil || got.RateLimit != nil || !got.IPFilter.IsZero() || got.Version != 3 {
		t.Errorf("Update(reset) = %+v, %v", got, err)
	}
}

func TestUpdateRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	_, tok := e.issue(t, orgSpec())
	_, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{Roles: ptr([]string{"root"}), Name: ptr("x")})
	if !errors.Is(err, apitoken.ErrPolicy) {
		t.Fatalf("Update(unknown role) = %v, want ErrPolicy", err)
	}
	if got, _ := e.iss.Get(ctx, tok.ID); got.Name != "ci" || got.Version != 1 {
		t.Errorf("refused Update changed the token: %+v", got)
	}
	if _, err := e.iss.Update(ctx, "nope", apitoken.Patch{}); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Update(missing) = %v, want ErrNotFound", err)
	}
	spec := orgSpec()
	spec.Lifetime = apitoken.Hours(1)
	_, short := e.issue(t, spec)
	e.clock.Advance(time.Hour)
	if _, err := e.iss.Update(ctx, short.ID, apitoken.Patch{Name: ptr("x")}); !only(err, apitoken.ErrExpired) {
		t.Errorf("Update(expired) = %v, want ErrExpired", err)
	}
	require.NoError(t, e.iss.Revoke(ctx, tok.ID))
	if _, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{Name: ptr("x")}); !only(err, apitoken.ErrRevoked) {
		t.Errorf("Update(revoked) = %v, want ErrRevoked", err)
	}
	if _, _, err := e.iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{}); !only(err, apitoken.ErrRevoked) {
		t.Errorf("Regenerate(revoked) = %v, want ErrRevoked", err)
	}
}

func TestUpdateConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	_, tok := e.issue(t, orgSpec())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			meta := map[string]string{"writer": string(rune('a' + i))}
			_, err := e.iss.Update(ctx, tok.ID, apitoken.Patch{Metadata: &meta})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, apitoken.ErrConflict) {
			t.Errorf("concurrent Update = %v", err)
		}
	}
	got, _ := e.iss.Get(ctx, tok.ID)
	if got.Version != int64(1+ok) {
		t.Errorf("Version = %d after %d successful updates, want %d", got.Version, ok, 1+ok)
	}
}

func TestRegenerateNegativeGrace(t *testing.T) {
	e := newEnv(t, testPolicy())
	_, tok := e.issue(t, orgSpec())
	_, _, err := e.iss.Regenerate(context.Background(), tok.ID, apitoken.Lifetime{}, apitoken.WithGrace(-time.Second))
	require.ErrorIs(t, err, apitoken.ErrPolicy)
}

func TestListRevokeAllDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	var ids []string
	for range 5 {
		_, tok := e.issue(t, orgSpec())
		ids = append(ids, tok.ID)
	}
	e.issue(t, userSpec("u1"))
	var seen []string
	f := apitoken.Filter{Owner: apitoken.OrgOwner("org_1"), Limit: 2}
	for {
		page, err := e.iss.List(ctx, f)
		require.NoError(t, err)
		for _, tok := range page.Tokens {
			seen = append(seen, tok.ID)
			if !tok.Hash.IsZero() && tok.Hint == "" {
				t.Errorf("listed token without hint")
			}
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Errorf("List pages = %v, want %v in creation order", seen, ids)
	}
	if _, err := e.iss.List(ctx, apitoken.Filter{Cursor: "garbage"}); !errors.Is(err, apitoken.ErrBadCursor) {
		t.Errorf("List(bad cursor) = %v, want ErrBadCursor", err)
	}
	n, err := e.iss.RevokeAll(ctx, apitoken.OrgOwner("org_1"))
	if err != nil || n != 5 {
		t.Errorf("RevokeAll = %d, %v; want 5", n, err)
	}
	page, _ := e.iss.List(ctx, apitoken.Filter{Kind: apitoken.KindUser})
	if len(page.Tokens) != 1 || page.Tokens[0].Revoked() {
		t.Errorf("user token after org RevokeAll: %+v", page.Tokens)
	}
	require.NoError(t, e.iss.Delete(ctx, ids[0]))
	if _, err := e.iss.Get(ctx, ids[0]); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
	}
	if err := e.iss.Delete(ctx, ids[0]); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("Delete(deleted) = %v, want ErrNotFound", err)
	}
}

func TestReveal(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	_, plain := e.issue(t, orgSpec())
	if _, err := e.iss.Recover(ctx, plain.ID); !errors.Is(err, apitoken.ErrNotRecoverable) {
		t.Errorf("Reveal without seal keys = %v, want ErrNotRecoverable", err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithSealKeys(key), quietAudit)
	require.NoError(t, err)
	s, tok, err := iss.Issue(ctx, orgSpec())
	require.NoError(t, err)
	if bytes.Contains(tok.Sealed, []byte(s.Reveal()[5:])) {
		t.Fatal("sealed secret holds the plaintext")
	}
	got, err := iss.Recover(ctx, tok.ID)
	if err != nil || got.Reveal() != s.Reveal() {
		t.Fatalf("Reveal = %v, %v; want the issued secret", got, err)
	}
	s2, _, err := iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{})
	require.NoError(t, err)
	if got, err := iss.Recover(ctx, tok.ID); err != nil || got.Reveal() != s2.Reveal() {
		t.Errorf("Reveal after Regenerate = %v, %v; want the new secret", got, err)
	}
	// Key rotation: an older key still opens; an unknown key does not.
	rotated, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithSealKeys(bytes.Repeat([]byte{8}, 32), key), quietAudit)
	require.NoError(t, err)
	if got, err := rotated.Recover(ctx, tok.ID); err != nil || got.Reveal() != s2.Reveal() {
		t.Errorf("Reveal with rotated ring = %v, %v", got, err)
	}
	stranger, _ := apitoken.NewIssuer(store, testPolicy(), apitoken.WithSealKeys(bytes.Repeat([]byte{9}, 32)), quietAudit)
	if _, err := stranger.Recover(ctx, tok.ID); !errors.Is(err, apitoken.ErrNotRecoverable) {
		t.Errorf("Reveal with a foreign key = %v, want ErrNotRecoverable", err)
	}
	// The ID is associated data: a sealed secret moved to another token does not open.
	_, other, err := iss.Issue(ctx, orgSpec())
	require.NoError(t, err)
	stolen, _ := store.Get(ctx, tok.ID)
	other.Sealed = stolen.Sealed
	require.NoError(t, store.Update(ctx, other))
	if _, err := iss.Recover(ctx, other.ID); !errors.Is(err, apitoken.ErrNotRecoverable) {
		t.Errorf("Reveal of a moved sealed secret = %v, want ErrNotRecoverable", err)
	}
	require.NoError(t, iss.Revoke(ctx, tok.ID))
	if _, err := iss.Recover(ctx, tok.ID); !errors.Is(err, apitoken.ErrRevoked) {
		t.Errorf("Reveal(revoked) = %v, want ErrRevoked", err)
	}
	if _, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithSealKeys([]byte("short")), quietAudit); err == nil {
		t.Error("NewIssuer with a short seal key = nil error")
	}
}
