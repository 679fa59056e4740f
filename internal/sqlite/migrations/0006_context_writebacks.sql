-- Context write-backs in progress (bb.ContextWriteBackStore): a create on the context
-- waits while one lasts. until_ms is Unix milliseconds; a record past it has lapsed.
CREATE TABLE context_writebacks (
	context_id TEXT NOT NULL,
	session_id TEXT NOT NULL,
	until_ms   INTEGER NOT NULL,
	PRIMARY KEY (context_id, session_id)
);
