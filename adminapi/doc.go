// Package adminapi is a mountable REST API for managing tokens: an
// [http.Handler] over an [apitoken.Issuer], with JSON in and out and an
// OpenAPI 3.1 document ([OpenAPI], served at GET /openapi.json) that
// describes every route, payload and error.
//
// Quick start: the host says who may manage which tokens, and mounts the
// handler where it likes.
//
//	h, err := adminapi.New(iss, func(r *http.Request) (*adminapi.Manager, error) {
//		u, ok := sessions.User(r) // the host's own authentication
//		if !ok {
//			return nil, adminapi.ErrUnauthenticated // 401
//		}
//		return &adminapi.Manager{Actor: "user:" + u.ID, UserID: u.ID, Privileges: u.Privileges,
//			May: func(s adminapi.Scope) bool { return s.Self || u.ManagesTokensOf(s.Owner) }}, nil
//	}, adminapi.WithPolicy(policy), adminapi.WithChallenge(`Cookie realm="console"`))
//	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", h))
//
// # Routes
//
// Paths are relative to where the handler is mounted. Each of three scopes
// is one owner's collection of tokens:
//
//   - /self/apitokens: the manager's own user tokens (owner Manager.UserID);
//   - /orgs/{org}/apitokens: an org's tokens;
//   - /users/{user}/apitokens: a user's tokens, for token administrators.
//
// In each, with C the collection and C/{id} one token:
//
//	GET    C                   list: {"tokens": [...], "next_cursor": "..."}; ?limit=1..1000, ?cursor=, ?status=active|expired|revoked
//	POST   C                   create: 201, Location, ETag, the token with its "key"
//	GET    C/expiring?within=7d  live tokens expiring within the span, soonest first
//	POST   C/revoke-all        revoke every token of the scope: {"revoked": n}
//	GET    C/{id}              the token, with ETag
//	PATCH  C/{id}              update (If-Match): name, description, roles, grants, all_apis, resources, lifetime, ip_filter, rate_limit, metadata
//	DELETE C/{id}              delete: 204
//	POST   C/{id}/regenerate   new key and expiry (If-Match): {"lifetime": "6mo", "grace": "1h"}; the token with its new "key"
//	POST   C/{id}/revoke       revoke: the token
//	POST   C/{id}/reveal       a recoverable token's "key" again (see [apitoken.WithSealKeys])
//
// and GET /policy (the lifetimes, roles and IP filter names a form may
// offer; see [WithPolicy]) and GET /openapi.json (no authorization).
//
// A token's JSON is the [apitoken.Token] JSON plus its "status" (active,
// expired or revoked, under the policy): never its hash or sealed secret.
// Its key is in the create, regenerate and reveal responses only, which
// carry Cache-Control: no-store. Access levels are "none", "read" and
// "full"; "all_apis" is the level for every API (grants["*"]). Lifetimes
// are written as [apitoken.ParseLifetime] reads them ("6 months", "90d",
// "none"); the policy decides which are allowed. A PATCH is a merge
// patch: an absent field stays, null clears it. The ETag is the token's
// version, which every write moves (last_used_at and status change
// without it); If-Match with a stale one is 412 and changes nothing. An
// expired or revoked token is frozen: update, regenerate and reveal are a
// 409 telling to delete it and create a new one.
//
// # Who may manage
//
// The authorization hook given to [New] turns every request (but GET
// /openapi.json) into a [Manager] or an error: an error wrapping
// [ErrUnauthenticated] is a 401, any other a 403. Deny by default: a
// Manager with no May func manages nothing (403 on every scope), one with
// no Privileges can grant nothing. A manager may act on a token only as
// far as it could have created it: the handler puts the manager's
// Privileges in every Issuer call's context ([apitoken.WithPrivileges]),
// so create, update, regenerate and reveal refuse (422, rule NoEscalation)
// a token holding a role, an access level or a resource its manager
// lacks, and return no key; revoke, revoke-all and delete stay open to
// every manager of the scope, so whoever sees a leaked token can kill it.
// A token of another scope is a 404, exactly
// as an unknown ID, so IDs are no oracle. Every Issuer call carries the
// manager's Actor ([apitoken.WithActor]): a new token's created_by and
// every audit event name them.
//
// A token administrator who creates or regenerates a user's token under
// /users/{user} receives its key and can act as that user: grant that
// scope only to those trusted with it.
//
// # Errors and bad input
//
// Errors are RFC 9457 problems (application/problem+json) with a
// machine-readable "code" (invalid_request, unauthenticated, forbidden,
// cross_origin, not_found, method_not_allowed, unsupported_media_type,
// body_too_large, policy, expired, revoked, not_recoverable,
// precondition_failed, conflict, unavailable, internal). A policy violation
// (422) names the broken rule ([apitoken.PolicyError.Rule]:
// AllowedLifetimes, MaxLifetime, NoEscalation, …) in "rule" and, where it
// can be told, the request field in "field", so a UI can point at it; a
// malformed field (400) names it in "field" too. Bodies must be JSON
// objects sent as Content-Type: application/json (415 otherwise), of at
// most [DefaultMaxBodyBytes] (413); unknown fields, wrong types and data
// after the object are 400. Bad input is never a 500 and changes nothing.
//
// Put behind package httpauth's middleware (as examples/server mounts it),
// the API is answered by the middleware first, in the same problem shape:
// 400 invalid_request (malformed credentials), 401 unauthenticated or
// invalid_token, 403 insufficient_scope, 429 rate_limited with Retry-After
// (and the RateLimit fields when the token's limit is spent) and 503
// unavailable with Retry-After. The document lists these responses on
// every operation but GET /openapi.json, so generated clients decode them
// too.
//
// # Generated clients
//
// Clients generated from the document work as generated; the module in
// adminapi/clienttest generates both of these at test time and runs a
// token's lifecycle through each. For Go, oapi-codegen (v2.8.2 or later)
// with this configuration (go tool oapi-codegen -config oapi-codegen.yaml
// -o client.gen.go openapi.json):
//
//	package: apiclient
//	generate:
//	  models: true
//	  client: true
//	output-options:
//	  nullable-type: true
//
// nullable-type is needed: it makes the fields that take null
// (description, roles, grants, all_apis, resources, ip_filter, rate_limit
// and metadata of a create or a PATCH; lifetime of a create; lifetime and
// grace of a regenerate) nullable.Nullable[T] from
// github.com/oapi-codegen/nullable, so
// TokenPatch{RateLimit: nullable.NewNullNullable[apiclient.Limit]()} sends
// "rate_limit": null (back to the policy's limit) and an unset field is
// left out. Without it they are pointers with omitempty, and null cannot
// be sent. Problems decode into apiclient.Problem (the response's
// ApplicationproblemJSON401 and so on), the middleware's included. For
// TypeScript, openapi-typescript (7.x) generates the types and
// openapi-fetch makes the calls, with errors typed as the Problem schema;
// no option is needed.
//
// # Browser safety
//
// Hosts often authenticate managers with cookies, so state-changing
// requests from another origin are refused (403, code cross_origin) by
// [http.CrossOriginProtection] ([WithCrossOriginProtection] to trust more
// origins), and bodies must be JSON, which a cross-site form cannot send
// without a preflight.
//
// A [Handler] is immutable once built and safe for concurrent use.
package adminapi
