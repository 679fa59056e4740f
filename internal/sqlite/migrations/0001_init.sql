-- Times are Unix milliseconds (UTC); NULL is the zero time.

CREATE TABLE projects (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	owner_id        TEXT NOT NULL DEFAULT '',
	default_timeout INTEGER NOT NULL,
	concurrency     INTEGER NOT NULL,
	created_at      INTEGER,
	updated_at      INTEGER
);

CREATE TABLE sessions (
	id               TEXT PRIMARY KEY,
	project_id       TEXT NOT NULL REFERENCES projects (id),
	status           TEXT NOT NULL,
	created_at       INTEGER,
	updated_at       INTEGER,
	started_at       INTEGER,
	expires_at       INTEGER,
	ended_at         INTEGER,
	end_reason       TEXT NOT NULL DEFAULT '',
	keep_alive       INTEGER NOT NULL DEFAULT 0,
	region           TEXT NOT NULL DEFAULT '',
	timeout          INTEGER NOT NULL DEFAULT 0,
	proxy_bytes      INTEGER NOT NULL DEFAULT 0,
	context_id       TEXT NOT NULL DEFAULT '',
	extension_id     TEXT NOT NULL DEFAULT '',
	user_metadata    TEXT,
	browser_settings TEXT,
	settings         TEXT,
	request          TEXT,
	node_id          TEXT NOT NULL DEFAULT '',
	pid              INTEGER NOT NULL DEFAULT 0,
	avg_cpu_usage    INTEGER,
	memory_usage     INTEGER
);

CREATE INDEX sessions_project_created ON sessions (project_id, created_at);
CREATE INDEX sessions_status ON sessions (status);
CREATE INDEX sessions_node_status ON sessions (node_id, status);

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	project_id TEXT NOT NULL REFERENCES projects (id),
	name       TEXT NOT NULL DEFAULT '',
	hash       BLOB NOT NULL UNIQUE,
	created_at INTEGER
);

CREATE INDEX api_keys_project ON api_keys (project_id, created_at);

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
