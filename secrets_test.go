package apitoken_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/types"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
	"github.com/apitoken/apitoken/stores/memstore"
)

// Checklist items 7 and 8: the secret is shown once, by the calls that
// make it, and never logged.

// TestOnlyTheseReturnSecrets pins the exported calls of package apitoken
// that hand out a Secret: Parse, Issuer.Issue, Issuer.Regenerate and
// Issuer.Recover. It walks the package's exported functions, the methods of
// its exported types (promoted ones included) and its exported variables,
// and follows each result type through pointers, slices, maps, channels,
// struct fields (unexported too) and returned funcs; a callback that is
// given a Secret counts as well. A new way to a Secret fails the test.
func TestOnlyTheseReturnSecrets(t *testing.T) {
	r := loadRepo(t)
	root := r.pkgs["github.com/apitoken/apitoken"]
	require.NotNil(t, root)
	secretObj := root.pkg.Scope().Lookup("Secret")
	require.NotNil(t, secretObj, "apitoken.Secret")
	assert.Equal(t, []string{"Issuer.Issue", "Issuer.Recover", "Issuer.Regenerate", "Parse"}, secretGivers(root.pkg, secretObj.Type()),
		"the exported calls that return a Secret (or pass one to a callback)")

	// The canary: each way to hand out a Secret is seen.
	const canary = `package canary

import "github.com/apitoken/apitoken"

type Box struct{ s apitoken.Secret }
type Hook func(apitoken.Secret)
type Store struct{}
type Embeds struct{ Store }

func (Store) Dump() map[string][]*Box                 { return nil }
func (*Store) Later() func() (int, apitoken.Secret)  { return nil }
func (Store) hidden() apitoken.Secret                 { return apitoken.Secret{} }
func Watch(f func(string, apitoken.Secret))           {}
func Chan() <-chan apitoken.Secret                    { return nil }
func Fine(apitoken.Secret) string                     { return "" }
func OnHook(h Hook)                                   {}

var Last apitoken.Secret
`
	cf, err := parser.ParseFile(r.fset, "canary.go", canary, 0)
	require.NoError(t, err)
	conf := types.Config{Importer: srcImporter{r, "."}}
	cp, err := conf.Check("canary", r.fset, []*ast.File{cf}, nil)
	require.NoError(t, err, "type-checking the canary")
	assert.Equal(t, []string{"Chan", "Embeds.Dump", "Embeds.Later", "OnHook", "Store.Dump", "Store.Later", "Watch", "var Last"},
		secretGivers(cp, secretObj.Type()), "the canary's ways to a Secret")
}

// secretGivers returns the exported functions, methods (promoted ones
// included) and variables of pkg through which a caller gets a value of
// type secret.
func secretGivers(pkg *types.Package, secret types.Type) []string {
	var reach func(typ types.Type, seen map[types.Type]bool) bool
	reach = func(typ types.Type, seen map[types.Type]bool) bool {
		typ = types.Unalias(typ)
		if types.Identical(typ, secret) {
			return true
		}
		if seen[typ] {
			return false
		}
		seen[typ] = true
		switch x := typ.(type) {
		case *types.Named:
			return reach(x.Underlying(), seen)
		case *types.Pointer:
			return reach(x.Elem(), seen)
		case *types.Slice:
			return reach(x.Elem(), seen)
		case *types.Array:
			return reach(x.Elem(), seen)
		case *types.Chan:
			return reach(x.Elem(), seen)
		case *types.Map:
			return reach(x.Key(), seen) || reach(x.Elem(), seen)
		case *types.Struct:
			for i := range x.NumFields() {
				if reach(x.Field(i).Type(), seen) {
					return true
				}
			}
		case *types.Signature: // a func value: what calling it returns
			return tupleReaches(x.Results(), reach, seen)
		}
		return false
	}
	// gives reports whether calling a func of signature sig hands out a
	// Secret: in its results, or to a callback among its parameters.
	gives := func(sig *types.Signature) bool {
		if tupleReaches(sig.Results(), reach, map[types.Type]bool{}) {
			return true
		}
		for i := range sig.Params().Len() {
			if cb, ok := sig.Params().At(i).Type().Underlying().(*types.Signature); ok &&
				tupleReaches(cb.Params(), reach, map[types.Type]bool{}) {
				return true
			}
		}
		return false
	}

	var got []string
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch o := obj.(type) {
		case *types.Func:
			if gives(o.Type().(*types.Signature)) {
				got = append(got, name)
			}
		case *types.Var:
			if reach(o.Type(), map[types.Type]bool{}) {
				got = append(got, "var "+name)
			}
		case *types.TypeName:
			if o.IsAlias() {
				continue
			}
			for _, recv := range []types.Type{o.Type(), types.NewPointer(o.Type())} {
				ms := types.NewMethodSet(recv)
				for i := range ms.Len() {
					m := ms.At(i).Obj().(*types.Func)
					if m.Exported() && gives(m.Type().(*types.Signature)) {
						got = append(got, name+"."+m.Name())
					}
				}
			}
		}
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func tupleReaches(tup *types.Tuple, reach func(types.Type, map[types.Type]bool) bool, seen map[types.Type]bool) bool {
	for i := range tup.Len() {
		if reach(tup.At(i).Type(), seen) {
			return true
		}
	}
	return false
}

// secretNeedle is a secret and the forms in which it must not appear.
type secretNeedle struct {
	what  string
	forms []string
}

// tokenNeedle returns the forms of a token: the whole token, its hex and
// base64, and every 12-character window of its body and checksum.
func tokenNeedle(what, tok string) secretNeedle {
	tail := tok[strings.LastIndexByte(tok, '_')+1:]
	forms := []string{tok, hex.EncodeToString([]byte(tok)), base64.StdEncoding.EncodeToString([]byte(tok)),
		base64.RawURLEncoding.EncodeToString([]byte(tok))}
	for i := 0; i+12 <= len(tail); i++ {
		forms = append(forms, tail[i:i+12])
	}
	return secretNeedle{what, forms}
}

// bytesNeedle returns the raw, hex and base64 forms of a key or a hash.
func bytesNeedle(what string, b []byte) secretNeedle {
	return secretNeedle{what, []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}}
}

// findNeedles returns, for each needle found in out, what it is and where
// (the line, with the secret cut out).
func findNeedles(out string, needles []secretNeedle) []string {
	var found []string
	for _, n := range needles {
		for _, form := range n.forms {
			i := strings.Index(out, form)
			if i < 0 {
				continue
			}
			start := strings.LastIndexByte(out[:i], '\n') + 1
			end := strings.IndexByte(out[i:], '\n')
			if end < 0 {
				end = len(out) - i
			}
			line := strings.ReplaceAll(out[start:i+end], form, "«"+n.what+"»")
			found = append(found, fmt.Sprintf("%s, in: %.300s", n.what, line))
			break
		}
	}
	return found
}

// TestResultsHoldNoSecret: a reflection walk over everything Get, List,
// All, Expiring, Update, Validate (the Principal) and the store's
// GetByHash return, unexported fields included, and over their JSON, finds
// no secret of 6 tokens (sealed, regenerated in grace, revoked) nor any
// 12-character window of one.
func TestResultsHoldNoSecret(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := memstore.New()
	keys := apitoken.WithHashKeys([]byte("results-test-hash-key-0123456789abcdef"))
	iss, err := apitoken.NewIssuer(store, testPolicy(), keys, apitoken.WithSealKeys([]byte("results-test-seal-key-0123456789")), quietAudit)
	require.NoError(t, err)
	v, err := newValidator(t, store, testPolicy(), keys)
	require.NoError(t, err)
	var needles []secretNeedle
	var results []any
	var ids []string
	for i := range 5 {
		s, tok, err := iss.Issue(ctx, orgSpec())
		require.NoError(t, err)
		needles = append(needles, tokenNeedle(fmt.Sprintf("token %d", i), s.Reveal()))
		results = append(results, tok)
		ids = append(ids, tok.ID)
	}
	s, tok, err := iss.Regenerate(ctx, ids[0], apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
	require.NoError(t, err)
	needles = append(needles, tokenNeedle("regenerated token", s.Reveal()))
	results = append(results, tok)
	require.NoError(t, iss.Revoke(ctx, ids[1]))
	for _, id := range ids {
		got, err := iss.Get(ctx, id)
		require.NoError(t, err)
		results = append(results, got)
		byHash, err := store.GetByHash(ctx, got.Hash)
		require.NoError(t, err)
		results = append(results, byHash)
	}
	page, err := iss.List(ctx, apitoken.Filter{OrgID: "org_1"})
	require.NoError(t, err)
	results = append(results, page)
	for tk, err := range iss.All(ctx, apitoken.Filter{}) {
		require.NoError(t, err)
		results = append(results, tk)
	}
	exp, err := iss.Expiring(ctx, apitoken.Filter{}, 365*24*time.Hour)
	require.NoError(t, err)
	results = append(results, exp)
	upd, err := iss.Update(ctx, ids[2], apitoken.Patch{Name: ptr("renamed")})
	require.NoError(t, err)
	results = append(results, upd)
	p, err := v.Validate(ctx, s.Reveal(), readDev)
	require.NoError(t, err)
	results = append(results, p)

	var texts []string
	for _, res := range results {
		texts = append(texts, reflectTexts(reflect.ValueOf(res), map[uintptr]bool{})...)
		b, err := json.Marshal(res)
		require.NoError(t, err)
		texts = append(texts, string(b))
	}
	found := findNeedles(strings.Join(texts, "\n"), needles)
	assert.Empty(t, found, "secrets in what Get, List, All, Expiring, Update, GetByHash and Validate return")
	t.Logf("%d results, %d texts and byte strings walked: %d secrets found", len(results), len(texts), len(found))
}

// reflectTexts returns every string and byte string v holds or points to,
// unexported fields included.
func reflectTexts(v reflect.Value, seen map[uintptr]bool) []string {
	switch v.Kind() {
	case reflect.String:
		return []string{v.String()}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Pointer {
			if seen[v.Pointer()] {
				return nil
			}
			seen[v.Pointer()] = true
		}
		return reflectTexts(v.Elem(), seen)
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, reflectTexts(v.Field(i), seen)...)
		}
		return out
	case reflect.Map:
		var out []string
		for it := v.MapRange(); it.Next(); {
			out = append(out, reflectTexts(it.Key(), seen)...)
			out = append(out, reflectTexts(it.Value(), seen)...)
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			return []string{string(b), hex.EncodeToString(b)}
		}
		var out []string
		for i := range v.Len() {
			out = append(out, reflectTexts(v.Index(i), seen)...)
		}
		return out
	}
	return nil
}

// flakyStore is memstore with failures on demand. It records policy
// identities and is a LookupLimiter, so the Validator takes its rate-limit
// decisions in the lookup and refunds them on a denial.
type flakyStore struct {
	mem                                   *memstore.Store
	lim                                   *apitoken.LocalLimiter
	failReads, failTouch, failPrune, fail atomic.Bool
	failRefund                            atomic.Bool
}

var errFlaky = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (s *flakyStore) err(on *atomic.Bool) error {
	if on.Load() {
		return errFlaky
	}
	return nil
}

func (s *flakyStore) Create(ctx context.Context, t *apitoken.Token, max int) error {
	if err := s.err(&s.fail); err != nil {
		return err
	}
	return s.mem.Create(ctx, t, max)
}

func (s *flakyStore) Get(ctx context.Context, id string) (*apitoken.Token, error) {
	return s.mem.Get(ctx, id)
}

func (s *flakyStore) GetByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	if err := s.err(&s.failReads); err != nil {
		return nil, err
	}
	return s.mem.GetByHash(ctx, h)
}

func (s *flakyStore) Update(ctx context.Context, t *apitoken.Token) error {
	if err := s.err(&s.fail); err != nil {
		return err
	}
	return s.mem.Update(ctx, t)
}

func (s *flakyStore) Revoke(ctx context.Context, id string, at time.Time) error {
	return s.mem.Revoke(ctx, id, at)
}

func (s *flakyStore) RevokeAll(ctx context.Context, o apitoken.Owner, at time.Time) (int, error) {
	return s.mem.RevokeAll(ctx, o, at)
}

func (s *flakyStore) Delete(ctx context.Context, id string) error { return s.mem.Delete(ctx, id) }

func (s *flakyStore) List(ctx context.Context, f apitoken.Filter) (apitoken.Page, error) {
	return s.mem.List(ctx, f)
}

func (s *flakyStore) Touch(ctx context.Context, uses []apitoken.Use) error {
	if err := s.err(&s.failTouch); err != nil {
		return err
	}
	return s.mem.Touch(ctx, uses)
}

func (s *flakyStore) Prune(ctx context.Context, r apitoken.PruneRequest) (int, error) {
	if err := s.err(&s.failPrune); err != nil {
		return 0, err
	}
	return s.mem.Prune(ctx, r)
}

func (s *flakyStore) RecordPolicy(ctx context.Context, id apitoken.PolicyID) (apitoken.PolicyID, error) {
	return s.mem.RecordPolicy(ctx, id)
}

func (s *flakyStore) Allow(ctx context.Context, k apitoken.LimitKey, l apitoken.Limit, now time.Time) (apitoken.Decision, error) {
	return s.lim.Allow(ctx, k, l, now)
}

func (s *flakyStore) GetByHashAllow(ctx context.Context, h apitoken.Hash, d apitoken.LimitDefaults, now time.Time) (*apitoken.Token, *apitoken.Decision, error) {
	t, err := s.GetByHash(ctx, h)
	if err != nil || t.Revoked() || t.Expired(now) {
		return t, nil, err
	}
	k, l := d.LimitFor(t)
	if l.IsZero() {
		return t, nil, nil
	}
	dec, err := s.lim.Allow(ctx, k, l, now)
	return t, &dec, err
}

func (s *flakyStore) Refund(context.Context, apitoken.LimitKey, apitoken.Limit, time.Time) error {
	return s.err(&s.failRefund)
}

// logCapture collects everything written to it, and passes each record's
// message on, so the test can wait for background logs without sleeping.
type logCapture struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	msgs chan string
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// notifyHandler tells c's channel each message after its handler wrote it.
type notifyHandler struct {
	slog.Handler
	c *logCapture
}

func (h notifyHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	select {
	case h.c.msgs <- r.Message:
	default: // nobody is waiting for so many
	}
	return err
}

func (h notifyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return notifyHandler{h.Handler.WithAttrs(as), h.c}
}

func (h notifyHandler) WithGroup(g string) slog.Handler {
	return notifyHandler{h.Handler.WithGroup(g), h.c}
}

// waitLog waits until a record whose message starts with prefix is logged.
func (c *logCapture) waitLog(t *testing.T, prefix string) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second) // a guard against a hang, not a wait
	defer timeout.Stop()
	for {
		select {
		case m := <-c.msgs:
			if strings.HasPrefix(m, prefix) {
				return
			}
		case <-timeout.C:
			t.Fatalf("no log record %q", prefix)
		}
	}
}

// TestLoggerSeesNoSecret runs the whole lifecycle with the library's own
// logger (WithLogger) and audit log (SlogAudit) at DEBUG, in JSON and text,
// and logs what a host would (every result, error and Principal, with
// %v %+v %#v %s %q and slog), through httpauth with its SlogObserver, an
// access log behind it and handlers that panic with a dump of the request
// (recovered and logged by net/http): issue, validate OK and every failure,
// rate limiting with a failed refund, regenerate with grace, recover,
// update, revoke, revoke all, delete, another policy's fingerprint, a store
// outage, a failed last-used flush, a prune and a failed prune. The
// captured output holds none of the secrets, no 12-character window of
// one, no hash key, seal key or token hash.
func TestLoggerSeesNoSecret(t *testing.T) {
	ctx := t.Context()
	capt := &logCapture{msgs: make(chan string, 4096)}
	logger := slog.New(notifyHandler{slog.NewMultiHandler(
		slog.NewJSONHandler(capt, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(capt, &slog.HandlerOptions{Level: slog.LevelDebug}),
	), capt})
	clock := newClock()
	hashKey := []byte("logger-test-hash-key-0123456789abcdef")
	sealKey := []byte("logger-test-seal-key-0123456789a")
	pol := testPolicy()
	pol.OrgRateLimit = apitoken.Limit{Rate: 1000, Burst: 1000}
	pol.MaxRateLimit = apitoken.Limit{Rate: 1000, Burst: 1000}
	store := &flakyStore{mem: memstore.New(), lim: apitoken.NewLocalLimiter()}
	iss, err := apitoken.NewIssuer(store, pol, apitoken.WithClock(clock.Now), apitoken.WithHashKeys(hashKey),
		apitoken.WithSealKeys(sealKey), apitoken.WithLogger(logger), apitoken.WithAudit(apitoken.SlogAudit(logger)))
	require.NoError(t, err)
	v, err := newValidator(t, store, pol, apitoken.WithClock(clock.Now), apitoken.WithHashKeys(hashKey),
		apitoken.WithLimiter(store), apitoken.WithLogger(logger), apitoken.WithSingleTenant("org_1"))
	require.NoError(t, err)

	var needles []secretNeedle
	// host logs what a host would log about a value: slog, and the fmt
	// verbs in a message.
	host := func(what string, vals ...any) {
		for _, val := range vals {
			logger.Debug(what, "value", val)
			logger.Debug(fmt.Sprintf("%s: %v | %+v | %#v | %s | %q", what, val, val, val, val, val))
			if err, ok := val.(error); ok && err != nil {
				logger.Error(what+": "+err.Error(), "err", err)
			}
		}
	}
	issue := func(name string, spec apitoken.Spec) (apitoken.Secret, *apitoken.Token) {
		t.Helper()
		if spec.Kind == 0 {
			spec.Kind, spec.OrgID = apitoken.KindOrg, "org_1"
		}
		spec.Name = name
		if spec.Roles == nil {
			spec.Roles = []string{"observer"}
		}
		s, tok, err := iss.Issue(ctx, spec)
		require.NoErrorf(t, err, "Issue %s", name)
		needles = append(needles, tokenNeedle(name+" token", s.Reveal()), bytesNeedle(name+" token's hash", tok.Hash[:]))
		host("issued "+name, s, tok, &s)
		return s, tok
	}
	validate := func(name, presented string, req apitoken.Request, want error) *apitoken.Principal {
		t.Helper()
		p, err := v.Validate(ctx, presented, req)
		if want == nil {
			require.NoErrorf(t, err, "Validate %s", name)
		} else {
			require.Truef(t, errors.Is(err, want), "Validate %s = %v, want %v", name, err, want)
		}
		host("validate "+name, err, p)
		return p
	}
	office := apitoken.Request{IP: officeIP, API: "devices", Access: apitoken.AccessRead}

	// Issue.
	main, mainTok := issue("main", apitoken.Spec{})
	fenced, _ := issue("fenced", apitoken.Spec{IPFilter: "office"})
	short, _ := issue("short", apitoken.Spec{Lifetime: apitoken.Minutes(60)})
	limited, _ := issue("limited", apitoken.Spec{RateLimit: &apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 2}})
	revoked, revokedTok := issue("revoked", apitoken.Spec{})
	rotated, rotatedTok := issue("rotated", apitoken.Spec{})
	_, goneTok := issue("deleted", apitoken.Spec{})
	issue("org_2 first", apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_2"})
	issue("org_2 second", apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_2"})

	// Validate: OK and every failure.
	typo := []byte(main.Reveal())
	typo[len("acme_")+3] ^= 1
	unknownBody := "UnknownUnknownUnknownUnknown00"
	unknown := "acme_" + unknownBody + tokChecksum(unknownBody)
	otherPrefix := "acmf_" + main.Reveal()[len("acme_"):]
	needles = append(needles, tokenNeedle("typo of main", string(typo)), tokenNeedle("unknown token", unknown))
	validate("main", main.Reveal(), office, nil)
	validate("typo", string(typo), office, apitoken.ErrMalformed)
	validate("other prefix", otherPrefix, office, apitoken.ErrMalformed)
	validate("unknown", unknown, office, apitoken.ErrUnknown)
	validate("other org", main.Reveal(), apitoken.Request{IP: officeIP, Org: "org_2", API: "devices", Access: apitoken.AccessRead}, apitoken.ErrUnknown)
	validate("outside the IP filter", fenced.Reveal(), apitoken.Request{IP: otherIP, API: "devices", Access: apitoken.AccessRead}, apitoken.ErrIPNotAllowed)
	validate("limited 1", limited.Reveal(), office, nil)
	validate("limited 2", limited.Reveal(), office, nil)
	validate("limited 3", limited.Reveal(), office, apitoken.ErrRateLimited)
	store.failRefund.Store(true)
	validate("forbidden, refund fails", main.Reveal(), apitoken.Request{IP: officeIP, API: "devices", Access: apitoken.AccessFull}, apitoken.ErrForbidden)
	capt.waitLog(t, "apitoken: rate-limit refund failed")
	store.failRefund.Store(false)

	// Regenerate with grace, recover, update, revoke, revoke all, delete.
	regenerated, regTok, err := iss.Regenerate(ctx, rotatedTok.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
	require.NoError(t, err)
	needles = append(needles, tokenNeedle("regenerated token", regenerated.Reveal()), bytesNeedle("regenerated hash", regTok.Hash[:]))
	host("regenerated", regenerated, regTok)
	validate("replaced secret in grace", rotated.Reveal(), office, nil)
	validate("regenerated", regenerated.Reveal(), office, nil)
	recovered, err := iss.Recover(ctx, mainTok.ID)
	require.NoError(t, err)
	require.True(t, recovered.Reveal() == main.Reveal(), "Recover returned another secret")
	host("recovered", recovered, err)
	upd, err := iss.Update(ctx, mainTok.ID, apitoken.Patch{Description: ptr("updated")})
	require.NoError(t, err)
	host("updated", upd)
	require.NoError(t, iss.Revoke(ctx, revokedTok.ID))
	validate("revoked", revoked.Reveal(), office, apitoken.ErrRevoked)
	n, err := iss.RevokeAll(ctx, apitoken.OrgOwner("org_2"))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, iss.Delete(ctx, goneTok.ID))
	page, err := iss.List(ctx, apitoken.Filter{})
	require.NoError(t, err)
	host("listed", page)

	// Another policy under the same prefix: a warning.
	other := pol
	other.DefaultRoles = []string{"observer"}
	iss2, err := apitoken.NewIssuer(store, other, apitoken.WithClock(clock.Now), apitoken.WithHashKeys(hashKey), apitoken.WithLogger(logger))
	require.NoError(t, err)
	s2, tok2, err := iss2.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "other policy"})
	require.NoError(t, err)
	needles = append(needles, tokenNeedle("other policy's token", s2.Reveal()))
	host("issued under another policy", s2, tok2)

	// A failed issue (the store is down).
	store.fail.Store(true)
	_, _, err = iss.Issue(ctx, orgSpec())
	require.ErrorIs(t, err, apitoken.ErrStoreUnavailable)
	host("issue with the store down", err)
	store.fail.Store(false)

	// httpauth: its observer, an access log behind it, and handlers that
	// panic with a dump of the request they got.
	auth, err := httpauth.New(v, httpauth.WithAPIName("devices"), httpauth.WithObserver(httpauth.SlogObserver(logger)),
		httpauth.WithAPIKeyHeader("X-API-Key"), httpauth.WithQueryParam("access_token"))
	require.NoError(t, err)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.PrincipalFrom(r.Context())
		logger.Info("access", "method", r.Method, "url", r.URL.String(), "headers", r.Header, "principal", p,
			"remote", r.RemoteAddr)
		if strings.HasSuffix(r.URL.Path, "/panic") {
			dump, _ := httputil.DumpRequest(r, true)
			panic(fmt.Sprintf("handler failed on %s: %#v\n%s", r.URL, p, dump))
		}
		fmt.Fprintln(w, "ok")
	})
	srv := httptest.NewUnstartedServer(auth.Wrap(inner))
	srv.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelError)
	srv.Start()
	t.Cleanup(srv.Close)
	get := func(path string, header http.Header) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		maps.Copy(req.Header, header)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, c := range []struct {
		name   string
		path   string
		header http.Header
		want   int // 0: the handler panics
	}{
		{"bearer, allowed", "/devices/ok", bearer(main.Reveal()), 200},
		{"bearer, panics", "/devices/panic", bearer(main.Reveal()), 0},
		{"API-key header, panics", "/devices/panic", http.Header{"X-Api-Key": {main.Reveal()}}, 0},
		{"query parameter, panics", "/devices/panic?access_token=" + main.Reveal() + "&x=1", nil, 0},
		{"unknown", "/devices/x", bearer(unknown), 401},
		{"typo", "/devices/x", bearer(string(typo)), 401},
		{"revoked", "/devices/x", bearer(revoked.Reveal()), 401},
		{"outside the IP filter", "/devices/x", bearer(fenced.Reveal()), 403},
	} {
		status, err := get(c.path, c.header)
		if c.want == 0 {
			require.Errorf(t, err, "%s: the handler's panic should end the connection", c.name)
			capt.waitLog(t, "http: panic serving")
		} else {
			require.NoErrorf(t, err, "%s", c.name)
			require.Equalf(t, c.want, status, "%s: status", c.name)
		}
	}
	store.failReads.Store(true)
	status, err := get("/devices/x", bearer(main.Reveal()))
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, status, "store down")
	validate("store down", main.Reveal(), office, apitoken.ErrStoreUnavailable)
	store.failReads.Store(false)

	// Expired and idle, then the pruner: once successful, once failing.
	clock.Advance(61 * time.Minute)
	validate("expired", short.Reveal(), office, apitoken.ErrExpired)
	ticks := make(chan time.Time)
	pr, err := apitoken.NewPruner(store, pol, apitoken.WithClock(clock.Now), apitoken.WithLogger(logger),
		apitoken.WithAudit(apitoken.SlogAudit(logger)), apitoken.WithTicks(ticks))
	require.NoError(t, err)
	clock.Advance(apitoken.DefaultRetention + time.Hour)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pr.Run(runCtx, time.Hour) }()
	capt.waitLog(t, "apitoken: pruned tokens")
	store.failPrune.Store(true)
	ticks <- clock.Now()
	capt.waitLog(t, "apitoken: prune failed")
	stop()
	require.NoError(t, <-done)
	store.failPrune.Store(false)
	clock.Advance(apitoken.DefaultIdleTimeout)
	validate("idle", limited.Reveal(), office, apitoken.ErrIdle)

	// A failed last-used flush, logged by Close.
	validate("main, before the failed flush", main.Reveal(), apitoken.Request{IP: officeIP, API: "devices", Access: apitoken.AccessRead}, apitoken.ErrIdle)
	store.failTouch.Store(true)
	v2, err := newValidator(t, store, pol, apitoken.WithClock(clock.Now), apitoken.WithHashKeys(hashKey), apitoken.WithLogger(logger),
		apitoken.WithSingleTenant("org_1"))
	require.NoError(t, err)
	_, err = v2.Validate(ctx, regenerated.Reveal(), office)
	require.Error(t, err, "the regenerated token is idle too")
	fresh, _ := issue("fresh", apitoken.Spec{})
	_, err = v2.Validate(ctx, fresh.Reveal(), office)
	require.NoError(t, err)
	host("close with a failing store", v2.Close(ctx))
	capt.waitLog(t, "apitoken: last-used flush failed")
	store.failTouch.Store(false)

	needles = append(needles, bytesNeedle("hash key", hashKey), bytesNeedle("seal key", sealKey))
	out := capt.String()
	for _, msg := range []string{
		"apitoken: created", "apitoken: regenerated", "apitoken: recovered", "apitoken: updated", "apitoken: revoked",
		"apitoken: revoked_all", "apitoken: deleted", "apitoken: pruned", "apitoken: a token's key was shown again",
		"apitoken: rate-limit refund failed", "apitoken: the store's tokens were last issued under another policy",
		"apitoken: pruned tokens", "apitoken: prune failed", "apitoken: last-used flush failed",
		"httpauth: request allowed", "httpauth: request rejected", "http: panic serving", `"status":503`,
		"validate typo", "validate store down",
	} {
		assert.Containsf(t, out, msg, "the captured log has no %q: the lifecycle missed a path", msg)
	}
	found := findNeedles(out, needles)
	assert.Empty(t, found, "secrets in the log")
	t.Logf("%d bytes, %d lines of log at DEBUG (JSON and text) over the lifecycle: %d of %d secrets, keys and hashes found",
		len(out), strings.Count(out, "\n"), len(found), len(needles))
}
