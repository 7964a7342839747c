-- 0003_policy: the identity of the policy the store's tokens are issued
-- under (apitoken.PolicyRecorder), one row at most: the token prefix, which
-- never changes once written, and the fingerprint of the latest writer's
-- policy. An Issuer whose policy has another prefix is refused. To move the
-- store to another prefix, delete the row by hand.

CREATE TABLE {{schema}}"{{prefix}}policy" (
	id          smallint NOT NULL PRIMARY KEY CHECK (id = 1),
	prefix      text     NOT NULL,
	fingerprint text     NOT NULL
);
