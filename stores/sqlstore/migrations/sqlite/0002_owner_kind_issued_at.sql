-- 0002_owner_kind_issued_at: an owner is a kind and an ID (user "42" and
-- org "42" are different owners), so the owner index leads with the kind:
-- RevokeAll, the per-owner bound and List by owner all filter on both.
-- issued_at is when the current secret was issued (NULL: a record from
-- before this column, read as the zero time). Existing rows get their
-- created_at: when their secret was issued, unless it was regenerated
-- since (the rows do not say when), and then an earlier instant, which is
-- what the apitoken package assumes of a record without it anyway.

ALTER TABLE "{{prefix}}tokens" ADD COLUMN issued_at INTEGER;
UPDATE "{{prefix}}tokens" SET issued_at = created_at;
DROP INDEX "{{prefix}}tokens_owner_idx";
CREATE INDEX "{{prefix}}tokens_owner_idx" ON "{{prefix}}tokens" (kind, owner_id, id);
