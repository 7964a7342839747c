// Package apitoken issues, stores, validates, rate-limits, rotates, revokes
// and prunes API tokens for an application server.
//
// A token looks like "acme_" + 30 random base62 characters + a 6-character
// CRC32 checksum (GitHub's scheme, so secret scanners can verify it and typos
// are rejected without a store lookup). Its plaintext is a [Secret], returned
// once by [Issuer.Issue]; stores keep only a hash of it (HMAC-SHA256 under a
// server key with [WithHashKeys], SHA-256 otherwise) and a display hint such
// as "acme_8f3K…x9Q2".
//
// Quick start, on the in-memory store:
//
//	store := memstore.New()
//	policy := apitoken.Policy{Prefix: "acme", Roles: map[string]apitoken.Role{
//		"observer": {Grants: apitoken.Grants{"devices": apitoken.AccessRead}}}}
//	iss, _ := apitoken.NewIssuer(store, policy)
//	v, _ := apitoken.NewValidator(store, policy)
//	secret, tok, _ := iss.Issue(ctx, apitoken.Spec{Kind: apitoken.KindOrg,
//		OrgID: "org_1", Name: "ci", Roles: []string{"observer"}})
//	show(secret.Reveal()) // once
//	p, err := v.Validate(ctx, presented, apitoken.Request{Org: "org_1",
//		API: "devices", Access: apitoken.AccessRead, IP: clientIP})
//	defer v.Close(ctx) // v writes last-used times in batches by itself; Close writes the rest
//
// A [Policy] sets the prefix, lifetimes (minutes to calendar months, a
// default, a maximum, an allowed set), the idle timeout (90 days unless set),
// IP filters, roles and their grants, a per-owner bound and default rate
// limits. The [Issuer] refuses requests that break it with a [*PolicyError]
// naming the rule. The [Validator] checks a presented token for a [Request]
// and fails, in order, with [ErrMalformed], [ErrUnknown], [ErrRevoked],
// [ErrExpired], [ErrIdle], [ErrIPNotAllowed], [ErrForbidden] or
// [ErrRateLimited]; a store, directory or limiter that cannot answer makes it
// fail closed with [ErrStoreUnavailable]. The [Pruner] removes idle and
// long-ended tokens.
//
// What an application uses: [NewIssuer], [NewValidator] and [NewPruner]
// with a [Policy] and their options ([IssuerOption], [ValidatorOption],
// [PrunerOption]); [Spec] and [Patch] to issue and change tokens; [Request]
// and [Principal] on the hot path; [Lifetime] values ([Months], [Days], …);
// the error values. Package httpauth wraps net/http handlers, and the
// stores live under stores/.
//
// For store authors only: the [Store] contract, which storetest checks
// clause by clause, with its types [Filter], [Page], [Use],
// [PruneRequest], [Hash] and the cursor helpers [EncodeCursor] and
// [DecodeCursor]; and the optional capabilities a store may add, found by
// type assertion: [HashReader] (read into a reused Token), [UseMarker]
// (write a use at once), [LookupLimiter] (look up and rate-limit in one
// round trip, with [LimitDefaults]), [PolicyRecorder] (remember the
// policy's identity) and a Ready method (see [Store]). An application
// never calls these.
//
// Managers: a manager may act on a token only as far as it could have
// created it. Put the acting manager's privileges in the context with
// [WithPrivileges] (packages adminapi and adminui do it on every request):
// the Issuer then refuses, with a [*PolicyError] of rule "NoEscalation",
// to issue, update, regenerate or show again ([Issuer.Recover]) a token
// holding a role (directly or through [Role.Includes]), an access level or
// a resource beyond the manager's, and the policy bounds what no manager
// may exceed: a token's own rate limit ([Policy.MaxRateLimit]) and the
// grace of a replaced key ([Policy.MaxGrace]). Revoke, RevokeAll and
// Delete stay open to every manager of a scope, so whoever sees a leaked
// token can kill it. A context without privileges is an operator's (a
// command-line tool, the host's own code): full power.
//
// Concurrency: Issuer, Validator, Pruner and LocalLimiter are safe for
// concurrent use. A Validator writes last-used times from a goroutine of its
// own, which [Validator.Close] stops; the Pruner, which deletes data, runs
// only where the host starts [Pruner.Run].
//
// Security: plaintext tokens never reach a store, a log, an error, fmt or
// JSON output: [Secret] formats as its hint. Hashes are compared in constant
// time. User tokens carry their user's current privileges, looked up through
// a [Directory] on every validation, so removing a user's access disables
// their tokens at once, and a narrowed user token's [Principal] holds the
// effective privileges. Once a stored token is found, a rejection is a
// [*TokenError] naming it by ID and hint, for logs; never show its text to
// the client. The core never trusts a forwarded client address; the caller
// supplies [Request.IP].
package apitoken
