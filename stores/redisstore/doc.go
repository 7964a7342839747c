// Package redisstore keeps API tokens and rate-limit budgets in Redis, so
// that every replica of an application sees the same tokens, revocations and
// limits. [Store] is an [apitoken.Store] and an [apitoken.LookupLimiter];
// [Limiter] is a stand-alone [apitoken.Limiter] (GCRA). Both take a
// redis.UniversalClient of github.com/redis/go-redis/v9, so one code path
// serves a single server, Sentinel and Redis Cluster.
//
// Quick start:
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // or NewClusterClient, NewFailoverClient
//	store, err := redisstore.New(ctx, client, redisstore.WithKeyPrefix("myapp"))
//	if err != nil { ... } // e.g. ErrEvictionPolicy
//	iss, _ := apitoken.NewIssuer(store, policy)
//	v, _ := apitoken.NewValidator(store, policy, apitoken.WithLimiter(store)) // lookup + limit: one round trip
//	pr, _ := apitoken.NewPruner(store, policy)
//	go pr.Run(ctx, time.Hour)
//
// # Keys and Redis Cluster
//
// Every key of a namespace ns ([WithKeyPrefix], default [DefaultKeyPrefix])
// starts with "{ns}:", so all of them share one Cluster hash tag, one slot
// and one primary, and every operation is one atomic Lua script without
// CROSSSLOT errors, on a Cluster exactly as on a single server. The price:
// one namespace has the capacity of one Redis server (tens of thousands of
// validations a second, millions of tokens in a few GB); spread load over a
// Cluster's primaries with several namespaces (one per region or tenant
// group). A namespace cannot be split, because a token is found by its hash
// and listed by its owner, and creation must be atomic across both.
//
// Redis drops the keys of an ended token (expired or revoked) by itself
// after the retention ([WithRetention], default 30 days), even if no
// [apitoken.Pruner] runs. Data written by earlier versions needs no
// migration step; during a rolling upgrade, replicas still on a version
// before owner kinds (user "42" and org "42" as different owners) do not see
// the owner indexes the upgraded ones write, so finish the rollout before
// relying on their RevokeAll or List by owner.
//
// The Store is an [apitoken.PolicyRecorder]: the first Issue records the
// identity of its policy (prefix and fingerprint) in the namespace's key
// {ns}:pol, so an Issuer whose policy has another prefix is refused; the
// key has no TTL, and deleting it by hand is how a namespace moves to
// another prefix.
//
// Instants are kept as whole Unix microseconds (as in the SQL store), so a
// round trip truncates nanoseconds; writing an instant outside the years
// 1685 to 2255 fails.
//
// # Round trips
//
// Every Store method is one round trip (plus a redirection while a Cluster
// moves the slot, and one more the first time a script runs after a restart
// emptied the script cache; New preloads the scripts). A Validator given the
// Store as its limiter (WithLimiter(store)) makes one round trip per
// validation, lookup and rate limit included ([Store.GetByHashAllow]); with
// a separate [Limiter] it makes two. List takes several scripts only when
// one would look at more than 2,000 index entries; Touch sends one script
// per 1,000 uses; Prune deletes two tokens a script, one Prune at a time per
// namespace (under a lease key, {ns}:pl), so that validations never wait
// behind a long script.
//
// # Rate limiting
//
// Budgets use GCRA, one timestamp per budget, charged by a script on the
// Redis server's TIME, so the replicas of an application need no
// synchronised clocks (see [Limiter.Allow]). For the same reason
// [apitoken.WithClock] does not move the limiter's clock; tests move it with
// [WithTimeOffset]. An org token has a budget of its own, a user's tokens
// share the user's; [Store.Allow], [Limiter.Allow] and GetByHashAllow charge
// the same budget for the same key, under the limit
// [apitoken.LimitDefaults.LimitFor] gives. [Store.Refund] gives a request
// back. Any error means no decision: the Validator then fails closed with
// [apitoken.ErrStoreUnavailable]. There is no fail-open mode.
//
// # Persistence and eviction
//
// A write Redis loses is a lost token (it then fails as unknown, which is
// safe), a lost revocation (the token works again, which is not) or a reset
// budget. What can be lost is the server's persistence setting: everything
// since the last snapshot with RDB only; up to about a second on a machine
// crash with appendonly yes and appendfsync everysec, and (measured here on
// Redis 7.0) now and then an acknowledged revoke on a mere process crash
// too: 16 of 500 revokes followed at once by a SIGKILL; nothing acknowledged
// with appendfsync always (0 of 20, and 0 of 600 under load). Replication is asynchronous, so a failover can
// lose acknowledged writes. [WithDurableRevoke] makes Revoke, RevokeAll and
// Delete wait for WAITAOF (Redis 7.2+), closing both gaps for the writes
// that matter most.
//
// [New] and [NewLimiter] refuse a server whose maxmemory-policy is not
// noeviction ([ErrEvictionPolicy]), since an evicting server drops tokens,
// revocations and budgets silently; [WithEvictionAllowed] overrides the
// check. With noeviction a full server (maxmemory reached) refuses new
// data: Create, Update, Regenerate and last-used writes fail with
// [ErrOutOfMemory], which also matches [apitoken.ErrStoreUnavailable] (an
// admin API answers 503), while validation, rate limiting, Revoke,
// RevokeAll and Delete go on working: their scripts may run at maxmemory
// (a few bytes per budget or revoked token). The scripts need Redis 7.0 or
// later.
//
// # Errors
//
// A missing token is [apitoken.ErrNotFound], a refused write
// [apitoken.ErrConflict] or [apitoken.ErrTooManyTokens]. A key of the
// namespace holding the wrong type or data the Store cannot read is a
// [*KeyError] naming the key; only the operations that touch it fail, and
// batch operations (Touch, RevokeAll, Prune) finish their work on the other
// tokens first. Anything else (connection refused, timeouts) is the
// go-redis error wrapped with the operation; a Validator reports it as
// [apitoken.ErrStoreUnavailable]. Errors name tokens by ID; a hash in a key
// name is cut to its first 8 hex digits. No error holds a hash, a secret or
// the client's credentials.
//
// # Concurrency and security
//
// A Store and a Limiter are safe for concurrent use, by any number of
// goroutines and processes. Only token hashes are stored, never plaintext
// tokens; hashes are not secret but are kept out of errors. Anyone who can
// read the Redis keyspace sees token metadata and hashes, and anyone who can
// write it can mint or revive tokens: protect Redis with ACLs and TLS, and
// give the application's user access to its namespace only
// (for example ACL SETUSER app on >password ~{myapp}:* +@all -@dangerous).
package redisstore
