// Package apitokentest gives a host application's tests a complete token
// stack in one call: an in-memory store, an [apitoken.Issuer], an
// [apitoken.Validator], a fake [Clock], a settable user [Directory], a
// helper that issues a token and returns its plaintext, and an
// [httpauth.Middleware] for handlers under [net/http/httptest]. It uses
// the standard library only, besides this module's packages.
//
// A host's handler test:
//
//	func TestDevices(t *testing.T) {
//		kit := apitokentest.New(t, apitokentest.WithPolicy(policy))
//		token := kit.Issue(apitoken.Spec{Kind: apitoken.KindOrg, Roles: []string{"observer"}})
//		h := kit.Handler("/devices/{id}", devices)
//
//		w := httptest.NewRecorder()
//		h.ServeHTTP(w, apitokentest.NewRequest("GET", "/devices/42", token))
//		if w.Code != http.StatusOK {
//			t.Fatalf("GET /devices/42: %d %s", w.Code, w.Body)
//		}
//	}
//
// What a [Kit] is made of, unless an [Option] says otherwise:
//
//   - the store is a fresh [memstore.Store] (WithStore replaces it, for
//     example with a wrapper that fails on demand);
//   - the policy is the zero [apitoken.Policy]: prefix "tok", no roles, so
//     tokens carry Grants (WithPolicy: pass the host's own policy);
//   - the Validator is single-tenant in [DefaultOrg] ("org_1"), so the
//     middleware needs no org source and org tokens issued with no OrgID
//     belong to it (WithSingleTenant names another org; WithMultiTenant
//     builds a multi-tenant Validator, whose middleware then needs
//     httpauth.WithOrg among WithMiddlewareOptions);
//   - the Validator has an [apitoken.LocalLimiter], so the policy's rate
//     limits apply, and the Kit's Directory as its user directory;
//   - every service runs on the Kit's Clock, which starts at 2026-01-01
//     00:00:00 UTC and moves only when the test sets or advances it: the
//     Issuer, the Validator and the limiter (through apitoken.WithClock),
//     and the middleware's failed-authentication throttle (through
//     httpauth.WithClock).
//
// The Kit's options come first and the host's own (WithIssuerOptions,
// WithValidatorOptions, WithMiddlewareOptions) after them, so the host's
// win. [New] closes the Validator with t.Cleanup. Methods that fail the
// test call t.Fatal, so call them from the goroutine running the test the
// Kit was built for; build one Kit per test (they are cheap).
package apitokentest
