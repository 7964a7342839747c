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
//	go v.Run(ctx)
//	pr, _ := apitoken.NewPruner(store, policy)
//	go pr.Run(ctx, time.Hour)
//
// # Data layout
//
// Every key of a namespace ns (see [WithKeyPrefix]; default "apitoken")
// starts with "{ns}:". Hashes appear in key names as 64 hex digits.
//
//	{ns}:h:<hash>     HASH    the token record, addressed by its current hash:
//	                          id, k (kind), o (owner), g (org), c, u, e, l, r (created,
//	                          updated, expires, last used, revoked: Unix µs, "" for none),
//	                          v (version), p (previous hash), pe (its expiry),
//	                          rl ("" for no override, else "rate burst"), j (JSON of the rest:
//	                          name, description, roles, grants, resources, IP filter,
//	                          metadata, hint, sealed secret), ia (IssuedAt, Unix µs, "" for
//	                          none; absent in records written before it, read as zero)
//	{ns}:h:<prev>     HASH    for a previous hash (grace period after Regenerate), an alias:
//	                          its only field, cur, holds the current hash
//	{ns}:i:<id>       STRING  ID → current hash
//	{ns}:ids          ZSET    every ID, score 0 (listing in ID order by ZRANGEBYLEX)
//	{ns}:ow:<kind>:<owner>  ZSET  IDs of an owner, kind (1 user, 2 org) and ID, score 0 (List by
//	                          owner, RevokeAll, per-owner bound): user "42" and org "42" are
//	                          different owners
//	{ns}:o:<owner>    ZSET    the owner index of the layout before owner kinds, both kinds'
//	                          IDs under one owner ID: only read, to upgrade (see below)
//	{ns}:g:<org>      ZSET    IDs of an org, score 0
//	{ns}:k:<kind>     ZSET    IDs of a kind (1 user, 2 org), score 0
//	{ns}:lu           ZSET    ID scored by last use, or creation if never used (µs): idle pruning
//	{ns}:end          ZSET    ID scored by expiry or revocation, whichever is first (µs): pruning
//	{ns}:ix           HASH    ID → "kind len(owner) owner org" of each token whose keys carry an
//	                          EXPIREAT: where Prune finds the indexes of a token Redis dropped
//	{ns}:rl:token:<id>  STRING  GCRA budget of an org token (theoretical arrival time, µs)
//	{ns}:rl:user:<id>   STRING  GCRA budget shared by a user's tokens
//
// Because a token's hashes and its aliases share one key space, claiming a
// hash is one EXISTS, and a lookup by hash is one HMGET whatever the hash
// turns out to be. The record, its ID key and its alias get EXPIREAT at the
// token's end plus the retention ([WithRetention], default 30 days), so
// Redis drops ended tokens even if no [apitoken.Pruner] runs; an end already
// past the retention when a token is written is left to Prune, so no key
// vanishes in the middle of an operation. Index entries a dropped token
// leaves behind are skipped by every operation. Prune removes all of them
// once its criteria reach the token's end: it meets the ID in the sorted
// sets of last uses and ends, and reads the owner, org and kind indexes to
// clean from {ns}:ix (no SCAN). List, RevokeAll and Create remove those in
// the index they walk. Budgets expire once full again.
//
// # Upgrading data written before owner kinds
//
// Earlier versions kept one owner index per owner ID, {ns}:o:<owner>, for
// the user and the org of that ID alike, and records without ia. Such data
// needs no migration step: a record without ia reads with a zero IssuedAt
// (so [apitoken.Token.SecretIssuedAt] is its CreatedAt), and the first List
// by owner, RevokeAll or bounded Create for an owner ID moves the IDs of
// its old index into the index of each token's kind, in the same script
// (which afterwards costs one EXISTS). Updating a token, deleting it or
// pruning it also takes it out of the old index. During a rolling upgrade,
// replicas still running an older version index new tokens in the old
// layout, which the upgraded ones adopt as they go; but the older replicas
// do not see the tokens the upgraded ones indexed or adopted, so finish the
// rollout before relying on their RevokeAll or List by owner.
//
// Instants are stored as whole Unix microseconds (as in the SQL store), so a
// round trip truncates nanoseconds; Lua compares them exactly between the
// years 1685 and 2255, and writing an instant outside that range fails.
//
// # Redis Cluster: one hash tag per namespace
//
// All keys of a namespace share the hash tag {ns}, so they live in one slot
// on one primary. Every operation is therefore one Lua script in one slot,
// atomic and free of CROSSSLOT errors on a Cluster exactly as on a single
// server: creation claims an ID and two hashes and checks the per-owner
// bound in one step, RevokeAll and Prune work across an owner's or the
// namespace's tokens, and the validation lookup reads the token and charges
// its budget together. Per-token hash tags would spread a namespace over the
// Cluster, but a token is found by its hash and listed by its owner, and no
// single tag serves both: creation could no longer be atomic. The price is
// that one namespace is served by one primary (and its replicas): its
// capacity is one Redis server's (tens of thousands of validations per
// second, millions of tokens in a few GB). The Cluster still brings failover,
// and several namespaces (for example one per region or tenant group) spread
// over its primaries. The scripts read the keys they derive from stored
// values (an owner's IDs, a record's previous hash) without declaring them,
// which Redis Cluster allows within the slot of the declared key.
//
// # Round trips
//
// Every Store method is one round trip, on a single server and on a Cluster
// (plus a redirection while a Cluster moves the slot, and one more the first
// time a script runs after a server restart emptied the script cache; New
// preloads the scripts). GetByHash, the lookup of a Validator without a
// Redis limiter, is a plain HMGET (a second one only for a previous hash in
// its grace period); the other methods are Lua scripts. A Validator given
// the Store as its own limiter (WithLimiter(store)) makes one round trip per
// validation, lookup and rate limit included ([Store.GetByHashAllow]: one
// lean script, which hands over to a diagnosing one only when it meets a bad
// key). With a separate [Limiter] it makes two. List and Prune split work over several scripts
// only when one would look at more than 2,000 index entries; Touch sends one
// script per 1,000 uses. [WithDurableRevoke] adds WAITAOF to the same
// pipeline.
//
// # Rate limiting
//
// Budgets use GCRA: one timestamp per budget, updated atomically by a script
// that reads the Redis server's TIME, so the replicas of an application
// need no synchronised clocks (see [Limiter.Allow]). A Decision's Remaining,
// ResetAt, ResetAfter and RetryAfter come from the same script.
// [Store.Refund] gives a request back (the Validator refunds a request
// GetByHashAllow charged when it then denies it), in one more script on the
// same server clock. An org token has a
// budget of its own, a user's tokens share the user's; [Store.Allow],
// [Limiter.Allow] and GetByHashAllow charge the same budget for the same
// key. GetByHashAllow charges it under the limit
// [apitoken.LimitDefaults.LimitFor] gives: the script reads the token's
// override and, when the policy has role limits, its roles (decoding the
// record's JSON only then). Any error means no decision: the Validator
// then fails closed with [apitoken.ErrStoreUnavailable]. There is no
// fail-open mode.
//
// # Persistence: what each setting can lose
//
// A lost write is a lost token (it fails as unknown, which is safe) or a lost
// revocation (the token works again, which is not), or a reset rate budget.
//
//   - No persistence: a restart loses every token and every revocation.
//   - RDB snapshots only (save …): a crash loses everything written since the
//     last snapshot, revocations included. Not recommended.
//   - appendonly yes, appendfsync everysec (the usual setting): a Redis
//     crash loses nothing acknowledged; a machine crash or power loss loses
//     up to about a second (two at worst) of writes.
//   - appendonly yes, appendfsync always: nothing acknowledged is lost on
//     that server, at the cost of an fsync per write.
//   - Replication is asynchronous: a failover to a replica (Sentinel,
//     Cluster) can lose acknowledged writes the replica had not received.
//
// [WithDurableRevoke] makes Revoke, RevokeAll and Delete return only once
// WAITAOF has confirmed the write in the primary's append-only file and in
// those of the replicas asked for (Redis 7.2+), closing both gaps for the
// writes that matter most. Other writes (issue, update, last-used times)
// follow the server's settings; a lost last-used time only delays pruning.
//
// # Eviction
//
// [New] and [NewLimiter] refuse a server whose maxmemory-policy is not
// noeviction ([ErrEvictionPolicy]): an evicting server drops tokens,
// revocations and budgets silently. With noeviction a full server refuses
// writes (OOM errors), which the Store reports. [WithEvictionAllowed]
// overrides the check.
//
// # Errors
//
// A missing token is [apitoken.ErrNotFound], a refused write
// [apitoken.ErrConflict] or [apitoken.ErrTooManyTokens]. A key of the
// namespace holding the wrong type or data the Store cannot read is a
// [*KeyError] naming the key; only the operations that touch it fail, and
// batch operations (Touch, RevokeAll, Prune) finish their work on the other
// tokens first. Anything else (connection refused, timeouts, OOM) is the
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
