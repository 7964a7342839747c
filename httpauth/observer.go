package httpauth

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/apitoken/apitoken"
)

// Outcome is one decision of the middleware, for [WithObserver].
type Outcome struct {
	Status    int                 // 0 when the request was let through to the handler
	Err       error               // the specific reason of a rejection
	Principal *apitoken.Principal // set when let through
	// TokenID and Hint name the token when a stored one was found: on
	// success, and on a rejection that is an [*apitoken.TokenError]
	// (revoked, expired, idle, another org, IP, access, rate limit).
	TokenID string
	Hint    string
	// ClientIP is the client address (the zero Addr if unknown).
	ClientIP netip.Addr
	// API and Access are what the request needed: for a 403 on access,
	// the API and level the token lacked.
	API    string
	Access apitoken.Access
}

// SlogObserver returns a [WithObserver] hook that logs every decision to l:
// rejections at Warn (503 at Error) with the status, the reason, the
// token's ID and hint when it was found, and for a 403 on access the
// missing scope; successes at Debug with the token's ID and hint. It never
// logs a token.
func SlogObserver(l *slog.Logger) func(*http.Request, Outcome) {
	return func(r *http.Request, o Outcome) {
		attrs := make([]slog.Attr, 0, 9)
		attrs = append(attrs, slog.String("method", r.Method), slog.String("api", o.API),
			slog.String("client_ip", o.ClientIP.String()))
		if o.TokenID != "" {
			attrs = append(attrs, slog.String("token_id", o.TokenID), slog.String("token", o.Hint))
		}
		if o.Principal != nil {
			l.LogAttrs(r.Context(), slog.LevelDebug, "httpauth: request allowed", attrs...)
			return
		}
		level := slog.LevelWarn
		if o.Status >= 500 {
			level = slog.LevelError
		}
		attrs = append(attrs, slog.Int("status", o.Status))
		if o.Err != nil {
			attrs = append(attrs, slog.String("reason", o.Err.Error()))
		}
		var te *apitoken.TokenError
		if errors.As(o.Err, &te) && te.Access > apitoken.AccessNone {
			attrs = append(attrs, slog.String("missing", te.API+":"+te.Access.String()))
		}
		l.LogAttrs(r.Context(), level, "httpauth: request rejected", attrs...)
	}
}
