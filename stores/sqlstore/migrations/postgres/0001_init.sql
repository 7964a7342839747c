-- 0001_init: tokens, the hash index, and the indexes of the hot path,
-- listing and pruning. Instants are timestamptz (microseconds, UTC); NULL
-- means "none" (never used, never expires, not revoked). Roles, grants,
-- resources, the IP filter and metadata are one jsonb object in attrs: the
-- store reads and writes them only with the whole token. IDs sort bytewise
-- (COLLATE "C"), the order List pages in.

CREATE TABLE {{schema}}"{{prefix}}tokens" (
	id               text COLLATE "C" NOT NULL PRIMARY KEY,
	kind             smallint         NOT NULL,
	owner_id         text COLLATE "C" NOT NULL,
	org_id           text COLLATE "C" NOT NULL DEFAULT '',
	name             text             NOT NULL DEFAULT '',
	description      text             NOT NULL DEFAULT '',
	hint             text             NOT NULL DEFAULT '',
	hash             bytea            NOT NULL,
	prev_hash        bytea,
	prev_expires_at  timestamptz,
	sealed           bytea,
	created_at       timestamptz      NOT NULL,
	updated_at       timestamptz      NOT NULL,
	expires_at       timestamptz,
	last_used_at     timestamptz,
	revoked_at       timestamptz,
	version          bigint           NOT NULL,
	rate_limit_rate  double precision,
	rate_limit_burst bigint,
	attrs            jsonb            NOT NULL DEFAULT '{}'
);

-- Every live hash (Hash and nonzero PrevHash) of every token, so that one
-- primary key makes a hash unique across both columns of all tokens.
CREATE TABLE {{schema}}"{{prefix}}hashes" (
	hash     bytea            NOT NULL PRIMARY KEY,
	token_id text COLLATE "C" NOT NULL REFERENCES {{schema}}"{{prefix}}tokens" (id) ON DELETE CASCADE
);

CREATE INDEX "{{prefix}}hashes_token_idx" ON {{schema}}"{{prefix}}hashes" (token_id);
CREATE INDEX "{{prefix}}tokens_owner_idx" ON {{schema}}"{{prefix}}tokens" (owner_id, id);
CREATE INDEX "{{prefix}}tokens_org_idx" ON {{schema}}"{{prefix}}tokens" (org_id, kind, id);
CREATE INDEX "{{prefix}}tokens_active_idx" ON {{schema}}"{{prefix}}tokens" (GREATEST(last_used_at, created_at));
CREATE INDEX "{{prefix}}tokens_expires_idx" ON {{schema}}"{{prefix}}tokens" (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX "{{prefix}}tokens_revoked_idx" ON {{schema}}"{{prefix}}tokens" (revoked_at) WHERE revoked_at IS NOT NULL;
