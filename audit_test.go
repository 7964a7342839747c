package apitoken_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/stores/memstore"
)

// recorder is an audit hook that keeps the events it hears.
type recorder struct {
	mu     sync.Mutex
	events []apitoken.Event
}

func (r *recorder) hook(_ context.Context, e apitoken.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() []apitoken.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// TestAuditOneEventPerOperation: every lifecycle operation reports exactly
// one event, naming the actor its context carried, and the token.
func TestAuditOneEventPerOperation(t *testing.T) {
	clock := newClock()
	store := memstore.New()
	rec := &recorder{}
	iss, err := apitoken.NewIssuer(store, testPolicy(), apitoken.WithClock(clock.Now), apitoken.WithAudit(rec.hook),
		apitoken.WithSealKeys(bytes.Repeat([]byte{7}, 32)))
	require.NoError(t, err)
	ctx := apitoken.WithActor(context.Background(), "user:alice")
	_, tok, err := iss.Issue(ctx, orgSpec())
	require.NoError(t, err)
	assert.Equal(t, "user:alice", tok.CreatedBy, "the actor is recorded as CreatedBy")
	stored, err := iss.Get(ctx, tok.ID)
	require.NoError(t, err)
	assert.Equal(t, "user:alice", stored.CreatedBy, "and stored")

	name := "renamed"
	tests := []struct {
		want apitoken.EventType
		op   func(ctx context.Context) error
	}{
		{apitoken.EventUpdated, func(ctx context.Context) error {
			_, err := iss.Update(ctx, tok.ID, apitoken.Patch{Name: &name})
			return err
		}},
		{apitoken.EventRegenerated, func(ctx context.Context) error {
			_, _, err := iss.Regenerate(ctx, tok.ID, apitoken.Lifetime{})
			return err
		}},
		{apitoken.EventRecovered, func(ctx context.Context) error {
			_, err := iss.Recover(ctx, tok.ID)
			return err
		}},
		{apitoken.EventRevoked, func(ctx context.Context) error { return iss.Revoke(ctx, tok.ID) }},
		{apitoken.EventDeleted, func(ctx context.Context) error { return iss.Delete(ctx, tok.ID) }},
	}
	rec.take()
	for _, tc := range tests {
		t.Run(string(tc.want), func(t *testing.T) {
			actor := "user:" + string(tc.want)
			require.NoError(t, tc.op(apitoken.WithActor(context.Background(), actor)))
			events := rec.take()
			require.Len(t, events, 1)
			e := events[0]
			assert.Equal(t, tc.want, e.Type)
			assert.Equal(t, actor, e.Actor)
			assert.Equal(t, tok.ID, e.TokenID)
			assert.NotEmpty(t, e.Hint)
			assert.Equal(t, apitoken.OrgOwner("org_1"), e.Owner)
			assert.True(t, e.At.Equal(t0), "At = %v", e.At)
		})
	}

	// A failed operation reports nothing.
	require.Error(t, iss.Revoke(ctx, tok.ID))
	assert.Empty(t, rec.take())

	for range 3 {
		_, _, err := iss.Issue(ctx, userSpec("u1"))
		require.NoError(t, err)
	}
	rec.take()
	n, err := iss.RevokeAll(apitoken.WithActor(context.Background(), "admin"), apitoken.UserOwner("u1"))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, []apitoken.Event{{Type: apitoken.EventRevokedAll, Actor: "admin", Owner: apitoken.UserOwner("u1"), Count: 3, At: t0}}, rec.take())

	pr, err := apitoken.NewPruner(store, testPolicy(), apitoken.WithClock(clock.Now), apitoken.WithAudit(rec.hook))
	require.NoError(t, err)
	clock.Advance(apitoken.DefaultRetention + time.Hour)
	st, err := pr.Prune(apitoken.WithActor(context.Background(), "pruner"))
	require.NoError(t, err)
	assert.Equal(t, 3, st.Expired)
	events := rec.take()
	require.Len(t, events, 1)
	assert.Equal(t, apitoken.EventPruned, events[0].Type)
	assert.Equal(t, "pruner", events[0].Actor)
	assert.Equal(t, 3, events[0].Count)

	_, err = apitoken.NewIssuer(store, testPolicy(), apitoken.WithAudit(nil))
	assert.Error(t, err, "a nil hook")
}

func TestSlogAuditNamesNoSecret(t *testing.T) {
	var buf bytes.Buffer
	iss, err := apitoken.NewIssuer(memstore.New(), testPolicy(),
		apitoken.WithAudit(apitoken.SlogAudit(slog.New(slog.NewTextHandler(&buf, nil)))))
	require.NoError(t, err)
	secret, tok, err := iss.Issue(apitoken.WithActor(context.Background(), "user:alice"), orgSpec())
	require.NoError(t, err)
	out := buf.String()
	assert.Contains(t, out, "apitoken: created")
	assert.Contains(t, out, "actor=user:alice")
	assert.Contains(t, out, "token_id="+tok.ID)
	assert.NotContains(t, out, secret.Reveal())
}

func TestExpiring(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testPolicy())
	spec := orgSpec()
	spec.Lifetime = apitoken.Days(10)
	_, late := e.issue(t, spec)
	spec.Lifetime = apitoken.Days(3)
	_, soon := e.issue(t, spec)
	spec.Lifetime = apitoken.Days(1)
	_, revoked := e.issue(t, spec)
	require.NoError(t, e.iss.Revoke(ctx, revoked.ID))
	spec.Lifetime = apitoken.Hours(1)
	_, gone := e.issue(t, spec)
	e.clock.Advance(2 * time.Hour)
	_ = gone

	got, err := e.iss.Expiring(ctx, apitoken.Filter{Owner: apitoken.OrgOwner("org_1")}, 7*24*time.Hour)
	require.NoError(t, err)
	require.Len(t, got, 1, "live tokens expiring within 7 days: not the revoked, the expired or the later one")
	assert.Equal(t, soon.ID, got[0].ID)
	got, err = e.iss.Expiring(ctx, apitoken.Filter{}, 30*24*time.Hour)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []string{soon.ID, late.ID}, []string{got[0].ID, got[1].ID}, "soonest first")
}
