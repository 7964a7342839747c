package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/httpauth"
)

// The flashes: why a session ended, for the sign-in page.
const (
	flashSignedOut = "signed-out"
	flashEnded     = "ended"   // expired, or unknown (the server restarted)
	flashRevoked   = "revoked" // the token was revoked, deleted or expired
	flashChanged   = "changed" // the token was edited or regenerated
)

func flashText(f string) string {
	switch f {
	case flashSignedOut:
		return "You are signed out."
	case flashEnded:
		return "Your session has ended: sign in again."
	case flashRevoked:
		return "The token you signed in with was revoked, deleted or has expired, so you were signed out."
	case flashChanged:
		return "The token you signed in with was changed (edited or regenerated), so you were signed out: sign in again."
	}
	return ""
}

// loginFailures is each client's budget of failed sign-ins: 10, then one
// a minute.
var loginFailures = apitoken.Limit{Rate: apitoken.Per(1, time.Minute), Burst: 10}

const (
	msgUnavailable = "The token store is unavailable right now: try again in a moment."
	msgNotManager  = "This token may not manage tokens: that takes the token-admin role."
)

// mountLogin serves the sign-in page at /login. A POST presents the token
// to the API's own middleware, for the "apitokens" API: failed sign-ins
// spend the client's budget (429 once spent, as the API answers a flood of
// forged tokens), and a sign-in is one use of the key, within its rate
// limit. Then a session starts; browsing the console costs the key nothing.
func (s *server) mountLogin(mux *http.ServeMux, ss *sessions, o options) error {
	auth, err := httpauth.New(s.v, httpauth.WithAPIName("apitokens"), httpauth.WithoutBearer(),
		httpauth.WithExtractor(func(r *http.Request) (string, bool) {
			t := r.PostFormValue("token")
			return t, t != ""
		}),
		httpauth.WithFailureLimit(loginFailures), httpauth.WithClock(o.now),
		httpauth.WithErrorHandler(loginFailed), httpauth.WithObserver(httpauth.SlogObserver(o.logger)))
	if err != nil {
		return err
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		v := pageView{Form: true}
		if c, err := r.Cookie(flashCookie); err == nil {
			v.Notice = flashText(c.Value)
			ss.setCookie(w, r, flashCookie, "", "/login", -1)
		}
		page(w, http.StatusOK, v)
	})
	signIn := auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.PrincipalFrom(r.Context())
		m, err := manager(p)
		if err != nil {
			page(w, http.StatusForbidden, pageView{Message: msgNotManager, Form: true})
			return
		}
		t, err := s.iss.Get(r.Context(), p.TokenID) // its version, which the session keeps
		if err != nil {
			page(w, http.StatusServiceUnavailable, pageView{Message: msgUnavailable, Form: true})
			return
		}
		ss.start(w, r, m, t)
		http.Redirect(w, r, home, http.StatusSeeOther)
	}))
	mux.Handle("POST /login", sameSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		signIn.ServeHTTP(w, r)
	})))
	return nil
}

// loginFailed renders the middleware's refusals as the sign-in page, with
// its status and Retry-After.
func loginFailed(w http.ResponseWriter, _ *http.Request, f *httpauth.Failure) {
	v := pageView{Form: true, Message: "That is not a working management token."}
	wait := max(1, int64((f.RetryAfter+time.Second-1)/time.Second))
	switch {
	case f.Status == http.StatusUnauthorized && f.Code == "":
		v.Message = "Enter your management token."
	case f.Status == http.StatusForbidden:
		v.Message = "This token may not manage tokens from here: that takes the token-admin role, and an address its IP filter allows."
	case errors.Is(f.Err, httpauth.ErrThrottled):
		v.Message = "Too many failed sign-ins from your address: try again in " + seconds(wait) + "."
	case f.Status == http.StatusTooManyRequests:
		v.Message = "This token has used up its rate limit: try again in " + seconds(wait) + "."
	case f.Status == http.StatusServiceUnavailable:
		v.Message = msgUnavailable
	}
	if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(wait, 10))
	}
	page(w, f.Status, v)
}

func seconds(n int64) string {
	if n == 1 {
		return "1 second"
	}
	return strconv.FormatInt(n, 10) + " seconds"
}
