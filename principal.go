package apitoken

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// Request is what a presented token must be good for.
type Request struct {
	// IP is the client address. An invalid (zero) address is denied by any
	// token with an IP filter. IPv4-mapped IPv6 addresses match IPv4
	// prefixes.
	IP netip.Addr
	// Org is the org the request acts in. An org token works only in its
	// own org; a user token works where the Directory gives its user
	// access. Empty means the Validator's single tenant (see
	// [WithSingleTenant]); on a multi-tenant Validator a request with no
	// org is one no org token works in.
	Org string
	// API and Access are the API called and the level it needs; AccessNone
	// skips the access check.
	API    string
	Access Access
	// Resource, when set, must be among the token's resources (if it lists
	// any) and the user's (if the Directory lists any).
	Resource string
}

// Membership is a user's current privileges in one org, as a [Directory]
// reports them.
type Membership struct {
	Roles     []string
	Grants    Grants
	Resources []string // empty: all resources
}

// Directory tells the Validator a user's current privileges, so a user token
// never outlives its user's access. Implementations must be safe for
// concurrent use and fast: Member runs on every validation of a user token.
type Directory interface {
	// Member returns the user's privileges in org. A user who does not
	// exist, is disabled or has no access to org is ErrNotFound; any other
	// error is a failure to answer.
	Member(ctx context.Context, userID, org string) (Membership, error)
}

// Principal is who a validated token acts for, with its effective
// privileges. Its slices and maps may be shared with the store's snapshot:
// treat them as read-only. Use the methods for access decisions.
type Principal struct {
	TokenID string
	Hint    string
	Name    string
	Kind    Kind
	OwnerID string
	// UserID is the user of a user token; empty for org tokens.
	UserID string
	// OrgID is the org the request acts in (Request.Org, the single
	// tenant's org, or an org token's own org).
	OrgID string
	// Roles, Grants and Resources are the effective privileges: the
	// token's for org tokens; for user tokens, the user's current ones,
	// narrowed by the token's own roles, grants and resources when it has
	// any. A narrowing role is kept if the user's privileges cover it; the
	// grants are then the lower of the user's and the token's level for
	// every API either names (and "*"). Empty Resources means all.
	Roles     []string
	Grants    Grants
	Resources []string
	Metadata  map[string]string
	// ExpiresAt is when the token stops working under the current policy
	// (its expiry, or its secret's issue plus the policy's MaxLifetime if
	// that comes first); zero: never.
	ExpiresAt time.Time
	// KeyOutdated is set when the token matched under an older hash key;
	// pass the presented token to [Issuer.Rehash].
	KeyOutdated bool
	// Decision is the rate-limit decision this validation took (for the
	// RateLimit response headers); zero when no limit applies.
	Decision Decision

	pol *policy // the validator's policy, or nil for host-built principals
}

// scratch holds the Tokens a HashReader store reads into. A Principal keeps
// the token's strings and shared slices, never the Token itself, so each
// goes back after one validation. The next read overwrites every field, so
// they are not cleared.
var scratch = sync.Pool{New: func() any { return new(Token) }}
