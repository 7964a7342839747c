package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/adminapi"
)

// The console's cookies: the session ID, and a flash for the sign-in page
// saying why a session ended. A session lasts sessionTTL at most.
const (
	sessionCookie = "demo_session"
	flashCookie   = "demo_flash"
	sessionTTL    = 8 * time.Hour
)

// A session is a person signed in to the console with a management token:
// the token's ID and version (never its key) and the manager it makes them.
type session struct {
	tokenID string
	version int64 // the token's version at sign-in: any change to the token ends the session
	manager *adminapi.Manager
	expires time.Time
}

// sessions maps random session IDs, the only thing the cookie holds, to
// sessions. They live in memory, so a restart signs everyone out; a host
// with replicas keeps them in its shared store.
type sessions struct {
	iss       *apitoken.Issuer
	policy    apitoken.Policy
	now       func() time.Time
	behindTLS bool

	mu sync.Mutex
	m  map[string]*session
}

// start opens a session for m, who signed in with t, and sets its cookie.
func (ss *sessions) start(w http.ResponseWriter, r *http.Request, m *adminapi.Manager, t *apitoken.Token) {
	now := ss.now()
	id := rand.Text() // 26 base32 characters, 130 random bits
	ss.mu.Lock()
	for k, s := range ss.m { // forget expired sessions (sign-ins are few: throttled)
		if !now.Before(s.expires) {
			delete(ss.m, k)
		}
	}
	ss.m[id] = &session{tokenID: t.ID, version: t.Version, manager: m, expires: now.Add(sessionTTL)}
	ss.mu.Unlock()
	ss.setCookie(w, r, sessionCookie, id, consolePath, int(sessionTTL/time.Second))
}

// end ends the session id, clears its cookie and leaves the sign-in page a
// flash saying why (see flashes).
func (ss *sessions) end(w http.ResponseWriter, r *http.Request, id, flash string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
	ss.setCookie(w, r, sessionCookie, "", consolePath, -1)
	ss.setCookie(w, r, flashCookie, flash, "/login", 60)
}

// setCookie sets an HttpOnly, SameSite=Strict cookie for path, Secure when
// the request came over TLS or the server sits behind it, that lasts age
// seconds (a negative age deletes it).
func (ss *sessions) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, age int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: age,
		HttpOnly: true, Secure: r.TLS != nil || ss.behindTLS, SameSite: http.SameSiteStrictMode})
}

// managerKey is the context key of the signed-in manager.
type managerKey struct{}

// signedIn is the console's authorization hook: the manager require found.
func signedIn(r *http.Request) (*adminapi.Manager, error) {
	if m, ok := r.Context().Value(managerKey{}).(*adminapi.Manager); ok {
		return m, nil
	}
	return nil, adminapi.ErrUnauthenticated // the console's 401 page, with a Sign in link
}

// require passes the signed-in manager to next in the request's context,
// once the token's record shows it still active and unchanged. That is one
// store read by ID, not a validation: validating would need the plaintext
// key (which the session would then have to keep), spend the key's API
// rate limit and record a use on every page, while the record tells all a
// session needs. A session that ended sends the person to /login, which
// says why; a store that is down is a 503 page.
func (ss *sessions) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		s, flash, err := ss.check(r.Context(), c.Value)
		switch {
		case err != nil:
			w.Header().Set("Retry-After", "5")
			page(w, http.StatusServiceUnavailable, pageView{Heading: "The token console is unavailable",
				Message: msgUnavailable, Link: r.URL.Path, LinkText: "Try again"})
		case flash != "":
			ss.end(w, r, c.Value, flash)
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		default:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), managerKey{}, s.manager)))
		}
	})
}

// check returns session id, or the flash saying why it ended, or an error
// if the store cannot tell.
func (ss *sessions) check(ctx context.Context, id string) (*session, string, error) {
	now := ss.now()
	ss.mu.Lock()
	s := ss.m[id]
	ss.mu.Unlock()
	if s == nil || !now.Before(s.expires) {
		return nil, flashEnded, nil
	}
	t, err := ss.iss.Get(ctx, s.tokenID)
	switch {
	case errors.Is(err, apitoken.ErrNotFound):
		return nil, flashRevoked, nil // deleted
	case err != nil:
		return nil, "", err
	case ss.policy.Status(t, now) != apitoken.StatusActive:
		return nil, flashRevoked, nil
	case t.Version != s.version: // edited or regenerated: its privileges may differ
		return nil, flashChanged, nil
	}
	return s, "", nil
}
