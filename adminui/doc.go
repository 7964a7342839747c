// Package adminui is a token console a host mounts: the page where people
// see, create, edit, regenerate, revoke and delete their API tokens, as an
// [http.Handler] over the same [apitoken.Issuer], authorization hook and
// audit trail as package adminapi.
//
// Quick start: the host says who may manage which tokens (the admin API's
// hook), and mounts the console where it likes.
//
//	ui, err := adminui.New(iss, authorize, // func(*http.Request) (*adminapi.Manager, error)
//		adminui.WithPrefix("/settings/api-tokens"),
//		adminui.WithAPIs(adminui.API{Name: "billing", Title: "Billing"}, adminui.API{Name: "devices", Title: "Devices"}),
//		adminui.WithStylesheet("/static/app.css"))
//	mux.Handle("/settings/api-tokens/", ui)
//
// The console is mounted at its prefix as it is, not behind
// http.StripPrefix, the way package adminapi's handler is mounted with
// [adminapi.WithPrefix]. A wrong mount answers 404 with a page that says
// how to mount the console (see [WithPrefix]).
//
// # Pages
//
// Under the prefix, each of the admin API's three scopes has a page: /
// (the manager's own tokens), /orgs/{org}/ (an org's) and /users/{user}/
// (a user's, for token administrators). A page lists the tokens (name,
// description, the key's hint, kind, roles and access, expiry, last use,
// creator, status) with, for each, Edit, Regenerate, Revoke and Delete;
// an expired or revoked token offers only Delete. New token asks for a
// name, a description, roles, a level per API (Full, Read or No access,
// with a level for all APIs), resources (one ID a line, kept as written:
// an ID may hold spaces and commas), an expiry the policy allows (its
// allowed set, or a number of minutes, hours, days or months, or none)
// and a named IP filter where the policy has some. Edit asks the same,
// but shows a token's inline IP prefixes (set through the API or the
// CLI) read only, and keeps them. The new key is shown once, with a Copy
// button; the page's script then points the history entry at the list,
// so a reload shows only the hint. Regenerate asks for the new expiry and
// shows the new key once. Revoke, Revoke all and Delete each ask for
// confirmation on a page of their own. When the tokens Revoke all revokes
// include the one the manager is signed in with (the Manager's Privileges
// came from validating it), its confirmation says so, and its result
// ("3 tokens revoked, including the token you were signed in with") is
// the answer to the post itself, since the next request may be signed
// out; otherwise it goes back to the list, which says how many were
// revoked. A recoverable token
// (see [apitoken.WithSealKeys]) has a Show button that reveals the key
// (the Issuer audits each reveal) and becomes Hide. A policy violation is
// shown next to the field it concerns, in the policy's words.
//
// The authorization hook runs on every request but the assets: an error
// wrapping [adminapi.ErrUnauthenticated] is a 401 page, any other error or
// a scope the Manager may not manage a 403 page; neither shows any token.
// A token of another scope is "not found", exactly as an unknown ID. As
// in the admin API, a manager acts on a token only as far as it could have
// created it: every Issuer call carries the Manager's Privileges
// ([apitoken.WithPrivileges]), so Create, Edit, Regenerate and Show refuse
// a token beyond them (the policy's words above the form, and no key),
// while Revoke, Revoke all and Delete stay open to every manager of the
// scope. Revoke and Delete of the token the manager is signed in with
// warn on their confirmation and say afterwards that the manager is
// signed out, as Revoke all does.
//
// # Embedding and safety
//
// Pages are rendered on the server with html/template; the stylesheet and
// a small script are embedded, so there is no build step and no CDN. Every
// response carries a Content-Security-Policy of default-src 'self' (no
// inline script or style), X-Content-Type-Options: nosniff,
// Referrer-Policy: same-origin and X-Frame-Options: SAMEORIGIN; every page
// is Cache-Control: no-store, as some show a key. Every form post is
// checked by [http.CrossOriginProtection] (Sec-Fetch-Site, or else Origin
// against Host), which refuses cross-site posts with 403 before the hook
// runs; there are no CSRF tokens to thread through a host's templates.
// Every control has a label, the access grid is a group of radio buttons
// per API, errors are tied to their fields with aria-describedby, and
// everything works with the keyboard alone (and without script, but for
// Copy and the in-place Show).
//
// A [Handler] is immutable once built and safe for concurrent use.
package adminui
