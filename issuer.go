package apitoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Issuer creates and manages tokens: issue, list, get, update, regenerate,
// revoke, revoke all, delete and reveal. Use [NewIssuer]; the zero value is
// not usable. An Issuer is safe for concurrent use.
type Issuer struct {
	store Store
	pol   *policy
	src   Policy // the policy as given (a deep copy), for Policy
	hash  *hasher
	seal  *sealer // nil without seal keys
	cfg   issuerConfig
}

// NewIssuer returns an Issuer that keeps tokens in store under policy. It
// takes [IssuerOption]s: [WithHashKeys], [WithSealKeys], [WithClock],
// [WithLogger] and [WithAudit]. An invalid policy is a [*PolicyError]; a bad option is an
// error naming it, as is WithSealKeys without WithAudit or WithLogger (a
// recovered key must leave a trace). A store that says it cannot serve
// (see Readiness in [Store], such as a database never migrated) is an
// error wrapping the store's.
func NewIssuer(store Store, policy Policy, opts ...IssuerOption) (*Issuer, error) {
	if store == nil {
		return nil, errors.New("apitoken: NewIssuer: nil Store")
	}
	cfg := issuerConfig{base: newBase()}
	err := configure("NewIssuer", &cfg, opts, IssuerOption.applyIssuer)
	defer wipe(cfg.hashKeys) // the hasher and the sealer hold their own copies
	defer wipe(cfg.sealKeys)
	if err != nil {
		return nil, err
	}
	if err := checkReady("NewIssuer", store); err != nil {
		return nil, err
	}
	pol, err := policy.compile()
	if err != nil {
		return nil, err
	}
	is := &Issuer{store: store, pol: pol, src: policy.Clone(), hash: newHasher(cfg.hashKeys), cfg: cfg}
	if len(cfg.sealKeys) > 0 && cfg.audit == nil && cfg.logger == nil {
		return nil, errors.New("apitoken: NewIssuer: WithSealKeys needs WithAudit or WithLogger: " +
			"every key shown again (Issuer.Recover) must leave a trace")
	}
	if len(cfg.sealKeys) > 0 {
		if is.seal, err = newSealer(cfg.sealKeys, cfg.rand); err != nil {
			return nil, fmt.Errorf("apitoken: NewIssuer: WithSealKeys: %w", err)
		}
	}
	is.cfg.hashKeys, is.cfg.sealKeys = nil, nil
	return is, nil
}

// Spec describes a token to issue.
type Spec struct {
	Kind Kind
	// OwnerID is the user (KindUser) or org (KindOrg) the token belongs to.
	// For org tokens it defaults to OrgID and must equal it.
	OwnerID string
	// OrgID is the org of an org token (required). For a user token it is
	// informational (e.g. where it was created); user tokens work in every
	// org their user may access.
	OrgID       string
	Name        string // required; at most MaxNameLen bytes, no control characters
	Description string // at most MaxDescriptionLen bytes
	// Roles must be defined by the policy. An org token with neither Roles
	// nor Grants gets the policy's DefaultRoles.
	Roles     []string
	Grants    Grants
	Resources []string // empty: all resources
	// Lifetime is how long the token lives; zero means the policy default.
	Lifetime Lifetime
	// IPFilter names a policy IP filter; IPPrefixes gives inline CIDR
	// prefixes or single addresses instead, in the form of the policy's
	// named filters ("203.0.113.0/24", "2001:db8::1"), if the policy allows
	// inline filters. Set at most one.
	IPFilter   string
	IPPrefixes []string
	// RateLimit overrides the policy's limit for this org token when
	// non-nil; a zero Limit means "no limit". User tokens may not set it:
	// they share their user's budget.
	RateLimit *Limit
	Metadata  map[string]string
	// IssuedBy, when set, is who asks: the new token may not hold a role,
	// an access level or a resource that IssuedBy lacks. [WithPrivileges]
	// says the same for every call made with a context.
	IssuedBy *Principal
}

// Issue creates a token and returns its plaintext — the only time it exists
// outside the caller's hands — and the stored record (which holds only the
// hash and the hint; the caller owns it). Errors: a [*PolicyError] (matching
// [ErrPolicy], and [ErrTooManyTokens] for the per-owner bound) when the spec
// breaks the policy, exceeds the privileges of ctx ([WithPrivileges]; rule
// "NoEscalation") or meets a store holding tokens of another prefix (rule
// "Prefix", see [PolicyRecorder]); [ErrRandom] if the random source fails,
// or the store's error. Nothing is stored on error. The spec's slices and maps are copied.
func (is *Issuer) Issue(ctx context.Context, spec Spec) (Secret, *Token, error) {
	now := is.cfg.clock().UTC()
	if spec.Kind == KindOrg && spec.OwnerID == "" {
		spec.OwnerID = spec.OrgID
	}
	t := &Token{
		Kind:        spec.Kind,
		OwnerID:     spec.OwnerID,
		OrgID:       spec.OrgID,
		Name:        spec.Name,
		Description: spec.Description,
		Roles:       slices.Clone(spec.Roles),
		Grants:      maps.Clone(spec.Grants),
		Resources:   slices.Clone(spec.Resources),
		Metadata:    maps.Clone(spec.Metadata),
		CreatedAt:   now,
		CreatedBy:   ActorFrom(ctx),
		IssuedAt:    now,
		UpdatedAt:   now,
		Version:     1,
	}
	if spec.RateLimit != nil {
		l := *spec.RateLimit
		t.RateLimit = &l
	}
	if t.Kind == KindOrg && len(t.Roles) == 0 && len(t.Grants) == 0 {
		t.Roles = slices.Clone(is.pol.defaultRoles)
	}
	t.IPFilter.Name = spec.IPFilter
	for _, p := range spec.IPPrefixes {
		pfx, err := ParsePrefix(p)
		if err != nil {
			return Secret{}, nil, policyErr("IPPrefixes", strings.TrimPrefix(err.Error(), "apitoken: "))
		}
		t.IPFilter.Prefixes = append(t.IPFilter.Prefixes, pfx)
	}
	life := is.pol.resolveLifetime(spec.Lifetime)
	if err := is.pol.checkLifetime(life, now, now); err != nil {
		return Secret{}, nil, err
	}
	t.ExpiresAt = life.ExpiresAt(now)
	if err := is.check(ctx, t, spec.IssuedBy); err != nil {
		return Secret{}, nil, err
	}
	if err := is.checkPolicyID(ctx); err != nil {
		return Secret{}, nil, err
	}
	id, err := uuid.NewV7FromReader(is.cfg.rand)
	if err != nil {
		return Secret{}, nil, fmt.Errorf("%w: %w", ErrRandom, err)
	}
	t.ID = id.String()
	secret, err := is.newSecret(t)
	if err != nil {
		return Secret{}, nil, err
	}
	if err := is.store.Create(ctx, t, is.pol.maxPerOwner); err != nil {
		if errors.Is(err, ErrTooManyTokens) {
			return Secret{}, nil, &PolicyError{Rule: "MaxTokensPerOwner",
				Detail: fmt.Sprintf("owner already has %d live tokens", is.pol.maxPerOwner), err: ErrTooManyTokens}
		}
		if errors.Is(err, ErrConflict) {
			return Secret{}, nil, fmt.Errorf("apitoken: issue: %w: the new token's ID or secret is already taken "+
				"(is the random source repeating itself?)", err)
		}
		return Secret{}, nil, storeErr("issue", err)
	}
	is.audit(ctx, EventCreated, t, now)
	return secret, t, nil
}

// newSecret generates a secret for t and sets t's Hash, Hint and Sealed.
func (is *Issuer) newSecret(t *Token) (Secret, error) {
	secret, err := generate(is.cfg.rand, is.pol.prefix)
	if err != nil {
		return Secret{}, err
	}
	t.Hash = is.hash.sum(0, secret.Reveal())
	t.Hint = secret.Hint()
	t.Sealed = nil
	if is.seal != nil {
		if t.Sealed, err = is.seal.seal(t.ID, secret.Reveal()); err != nil {
			return Secret{}, err
		}
	}
	return secret, nil
}

// Get returns the token with the given ID. Errors: [ErrNotFound], or an
// error matching [ErrStoreUnavailable] when the store fails.
func (is *Issuer) Get(ctx context.Context, id string) (*Token, error) {
	t, err := is.store.Get(ctx, id)
	if err != nil {
		return nil, storeErr("get", err)
	}
	return t, nil
}

// All returns every token matching f, page after page, in creation order,
// so nobody writes the cursor loop; f.Limit sets the page size and
// f.Cursor where to start. A failure ends the sequence with (nil, err),
// with the errors of [Issuer.List]. Stopping early is fine.
func (is *Issuer) All(ctx context.Context, f Filter) iter.Seq2[*Token, error] {
	return func(yield func(*Token, error) bool) {
		for {
			page, err := is.List(ctx, f)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, t := range page.Tokens {
				if !yield(t, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			f.Cursor = page.Next
		}
	}
}

// Policy returns a copy of the policy the Issuer was built with (for a
// form that offers its lifetimes and roles, or for [Policy.Status]).
func (is *Issuer) Policy() Policy { return is.src.Clone() }

// Expiring returns the live tokens matching f (neither revoked nor
// expired at now) whose expiry under the current policy falls before
// now+within, soonest first, for a host's "your token expires in 7 days"
// mail. It reads every matching token (see [Issuer.All]); errors are those
// of [Issuer.List].
func (is *Issuer) Expiring(ctx context.Context, f Filter, within time.Duration) ([]*Token, error) {
	now := is.cfg.clock().UTC()
	var out []*Token
	for t, err := range is.All(ctx, f) {
		if err != nil {
			return nil, err
		}
		at := is.pol.expiry(t)
		if !t.Revoked() && !at.IsZero() && now.Before(at) && at.Before(now.Add(within)) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b *Token) int { return is.pol.expiry(a).Compare(is.pol.expiry(b)) })
	return out, nil
}

// List returns one page of tokens matching f (hints only; no token holds a
// secret), in creation order. Errors: [ErrBadCursor] for a bad cursor, a
// [*PolicyError] (rule "Owner") for an Owner with an ID but no valid kind or
// the reverse, or an error matching [ErrStoreUnavailable] when the store fails.
func (is *Issuer) List(ctx context.Context, f Filter) (Page, error) {
	if o := f.Owner; !o.IsZero() && (o.ID == "" || (o.Kind != KindUser && o.Kind != KindOrg)) {
		return Page{}, policyErr("Owner", "want UserOwner(id) or OrgOwner(id)")
	}
	p, err := is.store.List(ctx, f)
	if err != nil {
		return Page{}, storeErr("list", err)
	}
	return p, nil
}

// Revoke revokes the token: from the moment Revoke returns, it no longer
// validates. Revoking a revoked token succeeds. Errors: [ErrNotFound] or an
// error matching [ErrStoreUnavailable] when the store fails.
func (is *Issuer) Revoke(ctx context.Context, id string) error {
	now := is.cfg.clock().UTC()
	if err := is.store.Revoke(ctx, id, now); err != nil {
		return storeErr("revoke", err)
	}
	if is.cfg.audit != nil {
		t, _ := is.store.Get(ctx, id) // for the event's hint and owner; nil if deleted meanwhile
		is.audit(ctx, EventRevoked, orID(t, id), now)
	}
	return nil
}

// orID returns t, or a Token holding only id when t is nil.
func orID(t *Token, id string) *Token {
	if t == nil {
		return &Token{ID: id}
	}
	return t
}

// RevokeAll revokes every token of owner (a user's, [UserOwner], or an
// org's, [OrgOwner]: user "42" and org "42" are different owners) and
// returns how many it revoked. Errors: a [*PolicyError] (rule "Owner") for
// an owner without a valid kind or ID, or an error matching [ErrStoreUnavailable] when the store fails.
func (is *Issuer) RevokeAll(ctx context.Context, owner Owner) (int, error) {
	if owner.ID == "" || (owner.Kind != KindUser && owner.Kind != KindOrg) {
		return 0, policyErr("Owner", "want UserOwner(id) or OrgOwner(id)")
	}
	now := is.cfg.clock().UTC()
	n, err := is.store.RevokeAll(ctx, owner, now)
	if err != nil {
		return n, storeErr("revoke all", err)
	}
	if is.cfg.audit != nil {
		is.cfg.audit(ctx, Event{Type: EventRevokedAll, Actor: ActorFrom(ctx), Owner: owner, Count: n, At: now})
	}
	return n, nil
}

// Delete removes the token; it stops validating at once. Errors:
// [ErrNotFound] or an error matching [ErrStoreUnavailable] when the store fails.
func (is *Issuer) Delete(ctx context.Context, id string) error {
	var t *Token
	if is.cfg.audit != nil {
		t, _ = is.store.Get(ctx, id) // for the event's hint and owner
	}
	if err := is.store.Delete(ctx, id); err != nil {
		return storeErr("delete", err)
	}
	is.audit(ctx, EventDeleted, orID(t, id), is.cfg.clock().UTC())
	return nil
}

// Format prints only the type: an Issuer holds keys.
func (is *Issuer) Format(f fmt.State, _ rune) { io.WriteString(f, "apitoken.Issuer{…}") }

// issuerConfig is what NewIssuer's options set.
type issuerConfig struct {
	base
	hashKeys [][]byte
	sealKeys [][]byte
	audit    func(context.Context, Event)
}

// issuerOption is an [IssuerOption] of the Issuer's own.
type issuerOption struct {
	name  string
	apply func(*issuerConfig) error
}

func (o issuerOption) applyIssuer(c *issuerConfig) error {
	if err := o.apply(c); err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	return nil
}

// WithSealKeys makes tokens recoverable: the Issuer also stores each secret
// encrypted with XChaCha20-Poly1305 under keys[0] (the token ID as associated
// data), and [Issuer.Recover] decrypts it with whichever key sealed it. Each
// key must be exactly 32 random bytes; the keys are copied. Without this
// option only the hash is stored.
func WithSealKeys(keys ...[]byte) IssuerOption {
	return issuerOption{"WithSealKeys", func(c *issuerConfig) error {
		if len(keys) == 0 {
			return fmt.Errorf("no keys")
		}
		ring, err := keyRing(keys, 32)
		c.sealKeys = ring
		return err
	}}
}
