-- Contexts (persisted browser state) and uploaded extensions. Times are Unix
-- milliseconds (UTC); NULL is the zero time.

CREATE TABLE contexts (
	id            TEXT PRIMARY KEY,
	project_id    TEXT NOT NULL REFERENCES projects (id),
	name          TEXT NOT NULL DEFAULT '',
	-- name_key is bb.ContextNameKey(name): trimmed and lower-cased; NULL when unnamed,
	-- so that unnamed contexts never clash.
	name_key      TEXT,
	created_at    INTEGER,
	updated_at    INTEGER,
	snapshot      TEXT NOT NULL DEFAULT '',
	snapshot_size INTEGER NOT NULL DEFAULT 0,
	snapshot_at   INTEGER
);

CREATE UNIQUE INDEX contexts_project_name ON contexts (project_id, name_key) WHERE name_key IS NOT NULL;

CREATE TABLE extensions (
	id         TEXT PRIMARY KEY,
	project_id TEXT NOT NULL REFERENCES projects (id),
	file_name  TEXT NOT NULL,
	created_at INTEGER,
	updated_at INTEGER,
	blob       TEXT NOT NULL DEFAULT '',
	size       INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX extensions_project ON extensions (project_id);
