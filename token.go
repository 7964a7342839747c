package apitoken

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Kind says whom a token acts for: [KindUser] or [KindOrg]. The zero Kind
// is invalid.
type Kind uint8

// KindUser tokens act for a user, with the user's current privileges in
// whichever org a request names (looked up through a [Directory]),
// narrowed by the token's own roles, grants and resources if it has any.
const KindUser Kind = 1

// KindOrg tokens act for an org with the roles and grants stored on the
// token, and only within that org.
const KindOrg Kind = 2

// String returns "user", "org" or "invalid".
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindOrg:
		return "org"
	}
	return "invalid"
}

// MarshalText encodes k as "user" or "org".
func (k Kind) MarshalText() ([]byte, error) {
	if k != KindUser && k != KindOrg {
		return nil, fmt.Errorf("apitoken: invalid kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes "user" or "org".
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "user":
		*k = KindUser
	case "org":
		*k = KindOrg
	default:
		return fmt.Errorf("apitoken: invalid kind %q", b)
	}
	return nil
}

// Token is the stored record of a token. It never holds the plaintext
// secret. Stores keep copies; see [Store] for who may modify what.
type Token struct {
	ID          string `json:"id"` // UUID v7, set by the Issuer
	Kind        Kind   `json:"kind"`
	OwnerID     string `json:"owner_id"` // user ID for user tokens, org ID for org tokens
	OrgID       string `json:"org_id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Roles and Grants are the token's privileges (org tokens), or a
	// narrowing of its user's current privileges (user tokens: the token
	// keeps only these; both empty means no narrowing).
	Roles  []string `json:"roles,omitempty"`
	Grants Grants   `json:"grants,omitempty"`
	// Resources limits the token to these resources (e.g. site IDs); empty
	// means all.
	Resources []string          `json:"resources,omitempty"`
	IPFilter  IPFilter          `json:"ip_filter,omitzero"`
	RateLimit *Limit            `json:"rate_limit,omitempty"` // nil: the policy's default
	Metadata  map[string]string `json:"metadata,omitempty"`

	Hint string `json:"hint"` // e.g. "acme_8f3K…x9Q2"; the only form shown after issue
	Hash Hash   `json:"-"`
	// PrevHash is the hash of the secret Regenerate replaced, valid until
	// PrevExpiresAt (the grace period); zero when there is none.
	PrevHash      Hash      `json:"-"`
	PrevExpiresAt time.Time `json:"-"`
	// Sealed is the secret encrypted under a seal key (recoverable tokens
	// only); nil otherwise.
	Sealed []byte `json:"-"`

	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is who issued the token, as [WithActor] named them; empty
	// when the Issue call named nobody.
	CreatedBy string `json:"created_by,omitempty"`
	// IssuedAt is when the current secret was issued (by Issue or
	// Regenerate); the policy's MaxLifetime counts from it. Zero (a record
	// from before this field) means CreatedAt.
	IssuedAt   time.Time `json:"issued_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`   // zero: never
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // zero: never used
	RevokedAt  time.Time `json:"revoked_at,omitzero"`   // zero: not revoked
	// Version counts writes, for optimistic concurrency; see [Store.Update].
	Version int64 `json:"version"`
}

// Clone returns a deep copy of t. Store implementations use it to copy
// records in and out.
func (t *Token) Clone() *Token {
	if t == nil {
		return nil
	}
	c := *t
	c.Roles = slices.Clone(t.Roles)
	c.Grants = maps.Clone(t.Grants)
	c.Resources = slices.Clone(t.Resources)
	c.IPFilter.Prefixes = slices.Clone(t.IPFilter.Prefixes)
	if t.RateLimit != nil {
		l := *t.RateLimit
		c.RateLimit = &l
	}
	c.Metadata = maps.Clone(t.Metadata)
	c.Sealed = slices.Clone(t.Sealed)
	return &c
}

// Owner returns whom t belongs to: its Kind and OwnerID.
func (t *Token) Owner() Owner { return Owner{Kind: t.Kind, ID: t.OwnerID} }

// SecretIssuedAt returns when t's current secret was issued: IssuedAt, or
// CreatedAt for a record without it.
func (t *Token) SecretIssuedAt() time.Time {
	if t.IssuedAt.IsZero() {
		return t.CreatedAt
	}
	return t.IssuedAt
}

// Revoked reports whether t has been revoked.
func (t *Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether t has expired at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// ActiveAt returns the instant idleness is counted from: the last use, or
// creation if the token was never used.
func (t *Token) ActiveAt() time.Time {
	if t.LastUsedAt.After(t.CreatedAt) {
		return t.LastUsedAt
	}
	return t.CreatedAt
}

// Owner names whom tokens belong to: a user (Kind [KindUser], ID the user
// ID) or an org (Kind [KindOrg], ID the org ID). User IDs and org IDs are
// separate namespaces. The zero Owner names nobody.
type Owner struct {
	Kind Kind
	ID   string
}

// UserOwner returns the Owner of user id's tokens.
func UserOwner(id string) Owner { return Owner{Kind: KindUser, ID: id} }

// OrgOwner returns the Owner of org id's tokens.
func OrgOwner(id string) Owner { return Owner{Kind: KindOrg, ID: id} }

// IsZero reports whether o is the zero Owner.
func (o Owner) IsZero() bool { return o == Owner{} }

// String returns "user:<id>" or "org:<id>".
func (o Owner) String() string { return o.Kind.String() + ":" + o.ID }
