-- Context write-backs in progress (bb.ContextWriteBackStore): a create on the context,
-- on any node, waits while one lasts. until_ms is the database's clock in Unix
-- milliseconds; a record past it has lapsed (its node died during the write-back).
CREATE TABLE context_writebacks (
	context_id TEXT COLLATE "C" NOT NULL,
	session_id TEXT COLLATE "C" NOT NULL,
	until_ms   BIGINT NOT NULL,
	PRIMARY KEY (context_id, session_id)
);
