-- 0001_init: tokens, the hash index, and the indexes of the hot path,
-- listing and pruning. Instants are INTEGER microseconds since the Unix
-- epoch, UTC; NULL means "none" (never used, never expires, not revoked).
-- Roles, grants, resources, the IP filter and metadata are one JSON object
-- in attrs: the store reads and writes them only with the whole token.

CREATE TABLE "{{prefix}}tokens" (
	id               TEXT    NOT NULL PRIMARY KEY,
	kind             INTEGER NOT NULL,
	owner_id         TEXT    NOT NULL,
	org_id           TEXT    NOT NULL DEFAULT '',
	name             TEXT    NOT NULL DEFAULT '',
	description      TEXT    NOT NULL DEFAULT '',
	hint             TEXT    NOT NULL DEFAULT '',
	hash             BLOB    NOT NULL,
	prev_hash        BLOB,
	prev_expires_at  INTEGER,
	sealed           BLOB,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	expires_at       INTEGER,
	last_used_at     INTEGER,
	revoked_at       INTEGER,
	version          INTEGER NOT NULL,
	rate_limit_rate  REAL,
	rate_limit_burst INTEGER,
	attrs            TEXT    NOT NULL DEFAULT '{}'
) STRICT;

-- Every live hash (Hash and nonzero PrevHash) of every token, so that one
-- primary key makes a hash unique across both columns of all tokens.
CREATE TABLE "{{prefix}}hashes" (
	hash     BLOB NOT NULL PRIMARY KEY,
	token_id TEXT NOT NULL REFERENCES "{{prefix}}tokens" (id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX "{{prefix}}hashes_token_idx" ON "{{prefix}}hashes" (token_id);
CREATE INDEX "{{prefix}}tokens_owner_idx" ON "{{prefix}}tokens" (owner_id, id);
CREATE INDEX "{{prefix}}tokens_org_idx" ON "{{prefix}}tokens" (org_id, kind, id);
CREATE INDEX "{{prefix}}tokens_active_idx" ON "{{prefix}}tokens" (max(coalesce(last_used_at, created_at), created_at));
CREATE INDEX "{{prefix}}tokens_expires_idx" ON "{{prefix}}tokens" (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX "{{prefix}}tokens_revoked_idx" ON "{{prefix}}tokens" (revoked_at) WHERE revoked_at IS NOT NULL;
