package apitoken_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/apitokentest"
	"github.com/apitoken/apitoken/stores/memstore"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)

// newClock returns a settable clock at t0, for WithClock.
func newClock() *apitokentest.Clock { return apitokentest.NewClock(t0) }

// faultStore wraps a real store, counts calls and can fail on demand.
type faultStore struct {
	apitoken.Store
	getByHash atomic.Int64
	touches   atomic.Int64
	touched   atomic.Int64
	down      atomic.Bool
	// beforeRead, when set, runs at the start of every hash lookup.
	beforeRead atomic.Pointer[func()]
}

var errDown = errors.New("dial tcp 127.0.0.1:5432: connection refused")

func (s *faultStore) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	s.getByHash.Add(1)
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.GetByHash(ctx, h)
}

// ReadByHash makes faultStore a HashReader, as memstore is, so the tests run
// the Validator's path for in-memory stores.
func (s *faultStore) ReadByHash(ctx context.Context, h apitoken.Hash, dst *apitoken.Token) error {
	s.getByHash.Add(1)
	if f := s.beforeRead.Load(); f != nil {
		(*f)()
	}
	if s.down.Load() {
		return errDown
	}
	return s.Store.(apitoken.HashReader).ReadByHash(ctx, h, dst)
}

func (s *faultStore) Touch(ctx context.Context, uses []apitoken.Use) error {
	s.touches.Add(1)
	if s.down.Load() {
		return errDown
	}
	s.touched.Add(int64(len(uses)))
	return s.Store.Touch(ctx, uses)
}

// markingStore is a faultStore that is also a UseMarker (as memstore is),
// counting MarkUsed calls; failMarks makes them fail.
type markingStore struct {
	*faultStore
	marks     atomic.Int64
	failMarks atomic.Bool
}

func (s *markingStore) MarkUsed(ctx context.Context, h apitoken.Hash, at time.Time) error {
	s.marks.Add(1)
	if s.failMarks.Load() {
		return errDown
	}
	return s.Store.(apitoken.UseMarker).MarkUsed(ctx, h, at)
}

// directory is a static Directory: user → org → membership.
type directory struct {
	mu      sync.Mutex
	members map[string]map[string]apitoken.Membership
	err     error
}

func (d *directory) Member(_ context.Context, user, org string) (apitoken.Membership, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return apitoken.Membership{}, d.err
	}
	m, ok := d.members[user][org]
	if !ok {
		return apitoken.Membership{}, apitoken.ErrNotFound
	}
	return m, nil
}

func (d *directory) set(user, org string, m *apitoken.Membership) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.members == nil {
		d.members = map[string]map[string]apitoken.Membership{}
	}
	if d.members[user] == nil {
		d.members[user] = map[string]apitoken.Membership{}
	}
	if m == nil {
		delete(d.members[user], org)
		return
	}
	d.members[user][org] = *m
}

// testPolicy is the policy most tests use.
func testPolicy() apitoken.Policy {
	return apitoken.Policy{
		Prefix: "acme",
		Roles: map[string]apitoken.Role{
			"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}},
			"operator": {Grants: apitoken.Grants{"devices": apitoken.AccessFull, "sites": apitoken.AccessRead}},
			"admin":    {Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}},
		},
		IPFilters:           map[string][]string{"office": {"10.0.0.0/8", "2001:db8::/32"}},
		AllowInlineIPFilter: true,
	}
}

// env is an Issuer and a Validator over one faulty memstore with one clock.
type env struct {
	store *faultStore
	mem   *memstore.Store
	clock *apitokentest.Clock
	iss   *apitoken.Issuer
	v     *apitoken.Validator
	dir   *directory
}

func newEnv(t testing.TB, pol apitoken.Policy, vopts ...apitoken.ValidatorOption) *env {
	t.Helper()
	e := &env{mem: memstore.New(), clock: newClock(), dir: &directory{}}
	e.store = &faultStore{Store: e.mem}
	var err error
	e.iss, err = apitoken.NewIssuer(e.store, pol, apitoken.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]apitoken.ValidatorOption{apitoken.WithClock(e.clock.Now), apitoken.WithUsers(e.dir)}, vopts...)
	e.v, err = newValidator(t, e.store, pol, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func orgSpec() apitoken.Spec {
	return apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "ci", Roles: []string{"observer"}}
}

func (e *env) issue(t testing.TB, spec apitoken.Spec) (string, *apitoken.Token) {
	t.Helper()
	s, tok, err := e.iss.Issue(context.Background(), spec)
	if err != nil {
		t.Fatalf("Issue(%+v) = %v", spec, err)
	}
	return s.Reveal(), tok
}

var (
	officeIP = netip.MustParseAddr("10.1.2.3")
	otherIP  = netip.MustParseAddr("192.0.2.7")
	readDev  = apitoken.Request{IP: officeIP, Org: "org_1", API: "devices", Access: apitoken.AccessRead}
)

// allSentinels lists every exported sentinel error.
var allSentinels = []error{
	apitoken.ErrMalformed, apitoken.ErrUnknown, apitoken.ErrRevoked, apitoken.ErrExpired,
	apitoken.ErrIdle, apitoken.ErrIPNotAllowed, apitoken.ErrForbidden, apitoken.ErrRateLimited,
	apitoken.ErrPolicy, apitoken.ErrNotFound, apitoken.ErrConflict, apitoken.ErrTooManyTokens,
	apitoken.ErrStoreUnavailable, apitoken.ErrClosed, apitoken.ErrNotRecoverable,
	apitoken.ErrBadCursor, apitoken.ErrRandom,
}

// only reports whether err matches want and no other sentinel.
func only(err, want error) bool {
	for _, s := range allSentinels {
		if errors.Is(err, s) != (s == want) {
			return false
		}
	}
	return true
}

// newValidator is apitoken.NewValidator that closes the Validator (and so
// stops its flush loop) when t ends.
func newValidator(t testing.TB, store apitoken.Store, pol apitoken.Policy, opts ...apitoken.ValidatorOption) (*apitoken.Validator, error) {
	t.Helper()
	v, err := apitoken.NewValidator(store, pol, opts...)
	if err == nil {
		t.Cleanup(func() { v.Close(context.Background()) })
	}
	return v, err
}

// quietAudit is an audit hook that keeps nothing, for Issuers with seal
// keys (which need a hook or a logger) whose events a test does not read.
var quietAudit = apitoken.WithAudit(func(context.Context, apitoken.Event) {})
