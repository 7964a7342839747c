package redisstore_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/testservers"
	"github.com/apitoken/apitoken/stores/redisstore"
	"github.com/apitoken/apitoken/storetest"
)

// usedMemory returns the server's used_memory in bytes.
func usedMemory(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "memory").Result()
	require.NoError(t, err)
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// TestMaxMemory fills a Redis under maxmemory-policy noeviction: with
// tokens issued, maxmemory is set a little above the memory in use, and
// tokens are issued until Create fails. That failure, and every later
// write the server refuses, is redisstore.ErrOutOfMemory (and
// apitoken.ErrStoreUnavailable) and says so; meanwhile every token
// validates, through a Validator whose limiter is the Store (the combined
// lookup), one with a separate Redis Limiter and one without a limiter,
// including tokens whose budget had no key yet; a last-used flush fails
// with ErrOutOfMemory without breaking validation, and succeeds once the
// server has room again.
func TestMaxMemory(t *testing.T) {
	t.Parallel()
	srv := testservers.StartRedis(t)
	client := singleClient(t, srv)
	ctx := t.Context()
	store := newStore(t, client)
	limit := apitoken.Limit{Rate: 1000, Burst: 1000}
	pol := apitoken.Policy{Prefix: prefix, OrgRateLimit: limit, UserRateLimit: limit}
	lim, err := redisstore.NewLimiter(ctx, client, redisstore.WithKeyPrefix(storetest.Namespace(t)+"-lim"))
	require.NoError(t, err)
	vals := []struct {
		name string
		v    *apitoken.Validator
	}{
		{"combined", newValidator(t, store, pol, apitoken.WithLimiter(store))},
		{"separate limiter", newValidator(t, store, pol, apitoken.WithLimiter(lim))},
		{"no limiter", newValidator(t, store, pol)},
	}
	iss, err := apitoken.NewIssuer(store, pol)
	require.NoError(t, err)
	issueOne := func(i int) (string, error) {
		spec := apitoken.Spec{Kind: apitoken.KindOrg, OrgID: "org_1", Name: "fill " + strconv.Itoa(i),
			Grants: apitoken.Grants{apitoken.AllAPIs: apitoken.AccessFull}}
		if i%3 == 0 {
			spec = apitoken.Spec{Kind: apitoken.KindUser, OwnerID: "user_" + strconv.Itoa(i%7), Name: "fill " + strconv.Itoa(i)}
		}
		secret, _, err := iss.Issue(ctx, spec)
		return secret.Reveal(), err
	}
	var tokens []string
	for i := range 30 {
		tok, err := issueOne(i)
		require.NoError(t, err)
		tokens = append(tokens, tok)
	}
	// Half the tokens have used their budgets (and have last-used times
	// written); the others' budgets have no key yet.
	for _, tok := range tokens[:15] {
		for _, x := range vals {
			_, err := x.v.Validate(ctx, tok, req)
			require.NoError(t, err, "%s: Validate before the fill", x.name)
			require.NoError(t, x.v.Flush(ctx), "%s: Flush before the fill", x.name)
		}
	}

	before := usedMemory(t, client)
	maxmemory := before + 256<<10
	require.NoError(t, client.ConfigSet(ctx, "maxmemory", strconv.FormatInt(maxmemory, 10)).Err())
	t.Cleanup(func() { client.ConfigSet(t.Context(), "maxmemory", "0") })
	var full error
	filled := 0
	for i := 30; i < 100_000; i++ {
		tok, err := issueOne(i)
		if err != nil {
			full = err
			break
		}
		tokens = append(tokens, tok)
		filled++
	}
	require.Error(t, full, "Issue never failed")
	t.Logf("used memory %d bytes, maxmemory set to %d; %d more tokens issued before Create failed: %v", before, maxmemory, filled, full)
	checkOOM := func(what string, err error) {
		t.Helper()
		require.Error(t, err, what)
		assert.ErrorIs(t, err, redisstore.ErrOutOfMemory, what)
		assert.ErrorIs(t, err, apitoken.ErrStoreUnavailable, what)
		assert.Contains(t, err.Error(), "out of memory", what)
		assert.Contains(t, err.Error(), "maxmemory", what)
	}
	checkOOM("Issue at maxmemory", full)
	// Keep the server over its limit whatever its buffers do.
	require.NoError(t, client.ConfigSet(ctx, "maxmemory", strconv.FormatInt(usedMemory(t, client)-64<<10, 10)).Err())
	_, err = issueOne(-1)
	checkOOM("Issue over maxmemory", err)

	for _, x := range vals {
		for i, tok := range tokens {
			_, err := x.v.Validate(ctx, tok, req)
			require.NoError(t, err, "%s: Validate(token %d of %d) over maxmemory", x.name, i, len(tokens))
		}
	}
	for _, x := range vals {
		checkOOM(x.name+": Flush over maxmemory", x.v.Flush(ctx))
		_, err := x.v.Validate(ctx, tokens[len(tokens)-1], req)
		require.NoError(t, err, "%s: Validate after a failed flush", x.name)
	}

	// A leaked token can still be revoked or deleted: both stop it at once.
	page, err := iss.List(ctx, apitoken.Filter{Owner: apitoken.OrgOwner("org_1")})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(page.Tokens), 2)
	require.NoError(t, iss.Revoke(ctx, page.Tokens[0].ID), "Revoke over maxmemory")
	require.NoError(t, iss.Delete(ctx, page.Tokens[1].ID), "Delete over maxmemory")
	n, err := iss.RevokeAll(ctx, apitoken.UserOwner("user_3"))
	require.NoError(t, err, "RevokeAll over maxmemory")
	assert.Positive(t, n, "RevokeAll over maxmemory")
	revoked, deleted := 0, 0
	for _, tok := range tokens {
		_, err := vals[0].v.Validate(ctx, tok, req)
		switch {
		case errors.Is(err, apitoken.ErrRevoked):
			revoked++
		case errors.Is(err, apitoken.ErrUnknown):
			deleted++
		default:
			require.NoError(t, err, "Validate after the revocations")
		}
	}
	assert.Equal(t, 1+n, revoked, "tokens revoked over maxmemory")
	assert.Equal(t, 1, deleted, "tokens deleted over maxmemory")

	require.NoError(t, client.ConfigSet(ctx, "maxmemory", "0").Err())
	_, err = issueOne(-2)
	require.NoError(t, err, "Issue once the server has room")
	for _, x := range vals {
		require.NoError(t, x.v.Flush(ctx), "%s: Flush once the server has room", x.name)
	}
}
