package apitoken_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// The leak test issues, validates, regenerates and reveals real tokens, then
// formats every value it can reach — secrets, records, pages, principals,
// errors, decisions, the services and the store — with every fmt verb, JSON
// and slog, and fails if a plaintext token (or its body), a hash key or a
// seal key shows up in any encoding. Hashes must not show up in JSON or error
// text either.

var leakVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"}

// leakNeedle is a secret and the ways it could be spelled in output.
type leakNeedle struct {
	what  string
	forms []string
}

func leakForms(b []byte) []string {
	return []string{
		string(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		strings.Trim(fmt.Sprint(b), "[]"), // fmt's decimal form of a []byte
		strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}"),
	}
}

func leakTokenNeedle(what, plain string) leakNeedle {
	tail := plain[strings.LastIndexByte(plain, '_')+1:]
	return leakNeedle{what, append(leakForms([]byte(plain)), append(leakForms([]byte(tail)), tail[:apitoken.BodyLen])...)}
}

// leakRender returns every rendering of v: the fmt verbs, JSON, and slog's
// JSON and text handlers. jsonish marks the renderings that must not contain
// hashes (JSON is what reaches clients and log pipelines).
func leakRender(v any) (all map[string]string, jsonish map[string]string) {
	all, jsonish = map[string]string{}, map[string]string{}
	for _, verb := range leakVerbs {
		all[verb] = fmt.Sprintf(verb, v)
	}
	if b, err := json.Marshal(v); err == nil {
		all["json"], jsonish["json"] = string(b), string(b)
	} else {
		all["json error"] = err.Error()
	}
	var jbuf, tbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&jbuf, nil)).Info("value", "v", v)
	slog.New(slog.NewTextHandler(&tbuf, nil)).Info("value", "v", v)
	all["slog json"], jsonish["slog json"] = jbuf.String(), jbuf.String()
	all["slog text"] = tbuf.String()
	if err, ok := v.(error); ok {
		all["Error()"], jsonish["Error()"] = err.Error(), err.Error()
	}
	return all, jsonish
}

// leakValue is one value to format; knownBug, when set, names a reported
// library bug that makes this value leak the named secret.
type leakValue struct {
	name     string
	v        any
	knownBug map[string]string // needle.what → bug description
}

func TestLeak(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hashKey := []byte("leak-test-hash-key-0123456789abcdefghij")
	oldHashKey := []byte("leak-test-old-hash-key-0123456789abcdefghij")
	sealKey := []byte("leak-test-seal-key-0123456789abc") // exactly 32 bytes
	pol := apitoken.Policy{
		Prefix:              "acme",
		Roles:               map[string]apitoken.Role{"observer": {Grants: apitoken.Grants{"*": apitoken.AccessRead}}},
		IPFilters:           map[string][]string{"office": {"203.0.113.0/24"}},
		AllowInlineIPFilter: true,
		OrgRateLimit:        apitoken.Limit{Rate: apitoken.Per(1, time.Hour), Burst: 1},
	}
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, pol, apitoken.WithHashKeys(hashKey, oldHashKey), apitoken.WithSealKeys(sealKey), quietAudit)
	if err != nil {
		t.Fatal(err)
	}
	lim := apitoken.NewLocalLimiter()
	v, err := newValidator(t, store, pol, apitoken.WithHashKeys(hashKey, oldHashKey), apitoken.WithLimiter(lim),
		apitoken.WithSingleTenant("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	future, err := newValidator(t, store, pol, apitoken.WithHashKeys(hashKey, oldHashKey), apitoken.WithSingleTenant("org_1"),
		apitoken.WithClock(func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(spec apitoken.Spec) (apitoken.Secret, *apitoken.Token) {
		t.Helper()
		spec.Kind, spec.OrgID = apitoken.KindOrg, "org_1"
		if spec.Name == "" {
			spec.Name = "ci"
		}
		s, tok, err := iss.Issue(ctx, spec)
		if err != nil {
			t.Fatalf("Issue(%+v): %v", spec, err)
		}
		return s, tok
	}

	spec := apitoken.Spec{Name: "deploy", Description: "nightly", Roles: []string{"observer"}, Metadata: map[string]string{"team": "infra"}}
	secret, tok := issue(spec)
	fenced, _ := issue(apitoken.Spec{IPFilter: "office"})
	inline, _ := issue(apitoken.Spec{IPPrefixes: []string{"198.51.100.0/24"}})
	short, _ := issue(apitoken.Spec{Lifetime: apitoken.Minutes(60)})
	forever, _ := issue(apitoken.Spec{Lifetime: apitoken.NoExpiry})
	revoked, revokedTok := issue(apitoken.Spec{})
	if err := iss.Revoke(ctx, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	rotated, rotatedTok := issue(apitoken.Spec{})
	regenerated, regeneratedTok, err := iss.Regenerate(ctx, rotatedTok.ID, apitoken.Lifetime{}, apitoken.WithGrace(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revealed, err := iss.Recover(ctx, tok.ID)
	if err != nil || revealed.Reveal() != secret.Reveal() {
		t.Fatalf("Reveal(%s) = %v, %v; want the issued secret", tok.ID, revealed, err)
	}

	p, err := v.Validate(ctx, secret.Reveal(), apitoken.Request{})
	if err != nil {
		t.Fatalf("Validate(issued) = %v, want nil", err)
	}
	pGrace, err := v.Validate(ctx, rotated.Reveal(), apitoken.Request{Org: "org_1"})
	if err != nil {
		t.Fatalf("Validate(old secret in grace) = %v, want nil", err)
	}
	mutatedBytes := []byte(secret.Reveal())
	mutatedBytes[len("acme_")] ^= 1 // '0'↔'1', 'A'↔'@'… always a different byte
	mutated := string(mutatedBytes)
	stranger := tokMake("acme", "StrangerStrangerStrangerStrang")
	wrongPrefix := tokMake("other", "WrongPrefixWrongPrefixWrongPre")

	type outcome struct {
		name      string
		validator *apitoken.Validator
		presented string
		req       apitoken.Request
		want      error
	}
	var errs []leakValue
	for _, o := range []outcome{
		{"malformed", v, mutated, apitoken.Request{}, apitoken.ErrMalformed},
		{"wrong prefix", v, wrongPrefix, apitoken.Request{}, apitoken.ErrMalformed},
		{"unknown", v, stranger, apitoken.Request{}, apitoken.ErrUnknown},
		{"other org", v, secret.Reveal(), apitoken.Request{Org: "org_2"}, apitoken.ErrUnknown},
		{"revoked", v, revoked.Reveal(), apitoken.Request{}, apitoken.ErrRevoked},
		{"expired", future, short.Reveal(), apitoken.Request{}, apitoken.ErrExpired},
		{"idle", future, forever.Reveal(), apitoken.Request{}, apitoken.ErrIdle},
		{"named filter", v, fenced.Reveal(), apitoken.Request{IP: netip.MustParseAddr("192.0.2.1")}, apitoken.ErrIPNotAllowed},
		{"inline filter", v, inline.Reveal(), apitoken.Request{}, apitoken.ErrIPNotAllowed},
		{"forbidden", v, secret.Reveal(), apitoken.Request{API: "billing", Access: apitoken.AccessFull}, apitoken.ErrForbidden},
		// The first Validate above took the only request of the burst.
		{"rate limited", v, secret.Reveal(), apitoken.Request{}, apitoken.ErrRateLimited},
	} {
		_, err := o.validator.Validate(ctx, o.presented, o.req)
		if !errors.Is(err, o.want) {
			t.Fatalf("Validate(%s) = %v, want %v", o.name, err, o.want)
		}
		errs = append(errs, leakValue{name: "Validate error: " + o.name, v: err})
	}
	_, rlErr := v.Validate(ctx, secret.Reveal(), apitoken.Request{})
	var rle *apitoken.RateLimitError
	if !errors.As(rlErr, &rle) {
		t.Fatalf("rate-limited Validate = %T, want *apitoken.RateLimitError", rlErr)
	}
	_, _, polErr := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "x", Roles: []string{"ghost"}})
	var pe *apitoken.PolicyError
	if !errors.As(polErr, &pe) {
		t.Fatalf("Issue(unknown role) = %v, want a *PolicyError", polErr)
	}
	rehashMalformed := iss.Rehash(ctx, mutated)
	rehashUnknown := iss.Rehash(ctx, stranger)
	_, updErr := iss.Update(ctx, revokedTok.ID, apitoken.Patch{})
	_, getErr := iss.Get(ctx, "no-such-id")
	_, listErr := iss.List(ctx, apitoken.Filter{Cursor: "c1%%%"})
	page, err := iss.List(ctx, apitoken.Filter{OrgID: "org_1"})
	if err != nil || len(page.Tokens) == 0 {
		t.Fatalf("List() = %d tokens, %v", len(page.Tokens), err)
	}
	decision := rle.Decision

	needles := []leakNeedle{
		leakTokenNeedle("issued token", secret.Reveal()),
		leakTokenNeedle("IP-filtered token", fenced.Reveal()),
		leakTokenNeedle("inline-filtered token", inline.Reveal()),
		leakTokenNeedle("short-lived token", short.Reveal()),
		leakTokenNeedle("never-expiring token", forever.Reveal()),
		leakTokenNeedle("revoked token", revoked.Reveal()),
		leakTokenNeedle("replaced token", rotated.Reveal()),
		leakTokenNeedle("regenerated token", regenerated.Reveal()),
		leakTokenNeedle("presented malformed token", mutated),
		leakTokenNeedle("presented unknown token", stranger),
		leakTokenNeedle("presented token with another prefix", wrongPrefix),
		{"hash key", leakForms(hashKey)},
		{"old hash key", leakForms(oldHashKey)},
		{"seal key", leakForms(sealKey)},
	}
	var hashNeedles []leakNeedle
	for _, h := range []apitoken.Hash{tok.Hash, regeneratedTok.Hash, regeneratedTok.PrevHash} {
		hashNeedles = append(hashNeedles, leakNeedle{"a token hash", leakForms(h[:])[1:]}) // the raw bytes are not text
	}

	// fmt prints unexported fields through reflection, without calling any
	// method. Issuer.seal holds the raw seal keys one level down, so every
	// verb shows them; config.hashKeys is one pointer further, and %s or %q
	// of a service expands that pointer too (fmt's "%!s(*apitoken.config=&{…})"
	// path).
	keyBug := "options.go/issuer.go: services keep raw key bytes where fmt's reflection reaches them " +
		"(Issuer.seal [][]byte; config.hashKeys [][]byte behind Issuer.cfg / Validator.cfg)"
	issuerBug := map[string]string{"seal key": keyBug, "hash key": keyBug, "old hash key": keyBug}
	validatorBug := map[string]string{"hash key": keyBug, "old hash key": keyBug}
	values := []leakValue{
		{name: "Secret", v: secret},
		{name: "*Secret", v: &secret},
		{name: "regenerated Secret", v: regenerated},
		{name: "revealed Secret", v: revealed},
		{name: "*Token", v: tok},
		{name: "Token", v: *tok},
		{name: "regenerated *Token", v: regeneratedTok},
		{name: "Page", v: page},
		{name: "*Principal", v: p},
		{name: "Principal", v: *p},
		{name: "*Principal in grace", v: pGrace},
		{name: "PolicyError", v: polErr},
		{name: "*PolicyError", v: pe},
		{name: "RateLimitError", v: rlErr},
		{name: "*RateLimitError", v: rle},
		{name: "Decision", v: decision},
		{name: "Rehash error (malformed)", v: rehashMalformed},
		{name: "Rehash error (unknown)", v: rehashUnknown},
		{name: "Update error", v: updErr},
		{name: "Get error", v: getErr},
		{name: "List error", v: listErr},
		{name: "Spec", v: spec},
		{name: "Policy", v: pol},
		{name: "*Issuer", v: iss, knownBug: issuerBug},
		{name: "*Validator", v: v, knownBug: validatorBug},
		{name: "*Validator with clock", v: future, knownBug: validatorBug},
		{name: "*LocalLimiter", v: lim},
		{name: "*memstore.Store", v: store},
	}
	for i, tk := range page.Tokens {
		values = append(values, leakValue{name: fmt.Sprintf("Page.Tokens[%d]", i), v: tk})
	}
	// Everything the store holds.
	var stored []*apitoken.Token
	for f := (apitoken.Filter{Limit: apitoken.MaxPageSize}); ; {
		pg, err := store.List(ctx, f)
		if err != nil {
			t.Fatalf("store.List: %v", err)
		}
		stored = append(stored, pg.Tokens...)
		if pg.Next == "" {
			break
		}
		f.Cursor = pg.Next
	}
	if len(stored) != store.Len() || len(stored) != 7 {
		t.Fatalf("store.List returned %d tokens, store.Len() = %d", len(stored), store.Len())
	}
	values = append(values, leakValue{name: "store contents", v: stored})
	for i, tk := range stored {
		values = append(values, leakValue{name: fmt.Sprintf("stored token %d", i), v: tk})
		byHash, err := store.GetByHash(ctx, tk.Hash)
		if err != nil {
			t.Fatalf("GetByHash(stored %d): %v", i, err)
		}
		values = append(values, leakValue{name: fmt.Sprintf("GetByHash snapshot %d", i), v: byHash})
	}
	values = append(values, errs...)

	for _, lv := range values {
		t.Run(lv.name, func(t *testing.T) {
			t.Parallel()
			all, jsonish := leakRender(lv.v)
			var bugs []string
			bugDesc := map[string]bool{}
			for _, how := range slices.Sorted(maps.Keys(all)) {
				for _, n := range needles {
					for _, form := range n.forms {
						if !strings.Contains(all[how], form) {
							continue
						}
						if desc, ok := lv.knownBug[n.what]; ok {
							bugs = append(bugs, how+" shows the "+n.what)
							bugDesc[desc] = true
						} else {
							t.Errorf("%s of %s shows the %s (%q)", how, lv.name, n.what, form)
						}
						break
					}
				}
			}
			for how, out := range jsonish {
				for _, n := range hashNeedles {
					for _, form := range n.forms {
						if strings.Contains(out, form) {
							t.Errorf("%s of %s shows %s (%q)", how, lv.name, n.what, form)
						}
					}
				}
			}
			if len(bugs) > 0 {
				tokKnownBug(t, "%s: %s", strings.Join(slices.Sorted(maps.Keys(bugDesc)), "; "), strings.Join(bugs, ", "))
			}
		})
	}
}
