package apitoken

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// EventType names a lifecycle operation an audit hook hears of.
type EventType string

// The lifecycle events, one per successful operation.
const (
	EventCreated     EventType = "created"     // Issuer.Issue
	EventUpdated     EventType = "updated"     // Issuer.Update
	EventRegenerated EventType = "regenerated" // Issuer.Regenerate
	EventRevoked     EventType = "revoked"     // Issuer.Revoke
	EventRevokedAll  EventType = "revoked_all" // Issuer.RevokeAll (Count tokens)
	EventDeleted     EventType = "deleted"     // Issuer.Delete
	EventRecovered   EventType = "recovered"   // Issuer.Recover: a secret shown again
	EventPruned      EventType = "pruned"      // Pruner.Prune (Count tokens)
)

// Event is one lifecycle operation, for an audit hook ([WithAudit]). It
// names tokens by ID and hint, never by secret or hash.
type Event struct {
	Type EventType
	// Actor is who acted, as the host named them with [WithActor] on the
	// operation's context; empty when it did not.
	Actor string
	// TokenID and Hint name the token; empty for RevokedAll and Pruned.
	TokenID string
	Hint    string
	// Owner is the token's owner (RevokedAll: the owner whose tokens were
	// revoked); OrgID the token's org.
	Owner Owner
	OrgID string
	// Count is how many tokens RevokedAll revoked or Pruned deleted.
	Count int
	At    time.Time
}

type actorKey struct{}

// WithActor returns a copy of ctx naming who acts, for the operations
// called with it: the Issuer records the actor as a new token's CreatedBy
// and in every audit [Event]. actor is the host's ID for the person or
// service (for example "user:42").
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor [WithActor] put in ctx, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// An AuditOption reports lifecycle events to a hook: it is an
// [IssuerOption] and a [PrunerOption].
type AuditOption struct {
	hook func(context.Context, Event)
}

// WithAudit calls hook after every successful lifecycle operation of the
// Issuer or Pruner it is given to, with the operation's context (so the
// hook can read the request's own values) and an [Event]. The hook runs on
// the caller's goroutine, after the store has answered: keep it fast, and
// safe for concurrent use. nil is an error. [SlogAudit] logs events.
func WithAudit(hook func(ctx context.Context, e Event)) AuditOption {
	return AuditOption{hook: hook}
}

func (o AuditOption) check() error {
	if o.hook == nil {
		return errors.New("WithAudit: nil hook")
	}
	return nil
}

func (o AuditOption) applyIssuer(c *issuerConfig) error {
	c.audit = o.hook
	return o.check()
}

func (o AuditOption) applyPruner(c *prunerConfig) error {
	c.audit = o.hook
	return o.check()
}

// SlogAudit returns a [WithAudit] hook that logs each event to l at Info,
// with its fields as attributes.
func SlogAudit(l *slog.Logger) func(context.Context, Event) {
	return func(ctx context.Context, e Event) {
		attrs := []slog.Attr{slog.String("event", string(e.Type)), slog.String("actor", e.Actor),
			slog.Time("at", e.At)}
		if e.TokenID != "" {
			attrs = append(attrs, slog.String("token_id", e.TokenID), slog.String("token", e.Hint))
		}
		if !e.Owner.IsZero() {
			attrs = append(attrs, slog.String("owner", e.Owner.String()))
		}
		if e.OrgID != "" {
			attrs = append(attrs, slog.String("org", e.OrgID))
		}
		if e.Type == EventRevokedAll || e.Type == EventPruned {
			attrs = append(attrs, slog.Int("count", e.Count))
		}
		l.LogAttrs(ctx, slog.LevelInfo, "apitoken: "+string(e.Type), attrs...)
	}
}

// audit reports an event about t, if a hook is set. A recovery is also
// logged, at Warn, to the Issuer's logger: a key shown again always leaves
// a trace.
func (is *Issuer) audit(ctx context.Context, typ EventType, t *Token, at time.Time) {
	logged := typ == EventRecovered && is.cfg.logger != nil
	if is.cfg.audit == nil && !logged {
		return
	}
	e := Event{Type: typ, Actor: ActorFrom(ctx), At: at}
	if t != nil {
		e.TokenID, e.Hint, e.Owner, e.OrgID = t.ID, t.Hint, t.Owner(), t.OrgID
	}
	if logged {
		is.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "apitoken: a token's key was shown again",
			slog.String("actor", e.Actor), slog.String("token_id", e.TokenID), slog.String("token", e.Hint),
			slog.String("owner", e.Owner.String()))
	}
	if is.cfg.audit != nil {
		is.cfg.audit(ctx, e)
	}
}
