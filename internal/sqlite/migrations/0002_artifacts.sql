-- Session artifacts: CDP logs, and which sessions have artifacts to delete when their
-- retention expires. Files (downloads, uploads, recordings) live in the blob store.
-- Times are Unix milliseconds (UTC).

CREATE TABLE session_artifacts (
	session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	purged_at  INTEGER
);

CREATE TABLE session_logs (
	session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	seq            INTEGER NOT NULL,
	method         TEXT NOT NULL,
	page_id        INTEGER NOT NULL,
	cdp_session_id TEXT NOT NULL DEFAULT '',
	frame_id       TEXT NOT NULL DEFAULT '',
	loader_id      TEXT NOT NULL DEFAULT '',
	request_body   TEXT,
	request_raw    TEXT,
	request_at     INTEGER,
	response_body  TEXT,
	response_raw   TEXT,
	response_at    INTEGER,
	PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
