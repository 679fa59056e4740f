-- The schema of browserd's PostgreSQL store: the same tables as internal/sqlite's, with
-- its conventions. Times are Unix milliseconds (UTC) in BIGINT, NULL for the zero time,
-- so that both stores keep exactly the same values. Raw JSON fields and CDP log payloads
-- are BYTEA, kept byte for byte. Ids and other ordering keys compare as bytes (COLLATE
-- "C"), whatever the database's locale, as SQLite does.

-- browserd_try_jsonb decodes raw JSON, or gives NULL when PostgreSQL cannot hold it as
-- jsonb (invalid UTF-8 or JSON, a \u0000 escape): the metadata filter of Sessions reads
-- it, and a malformed value must not fail a whole list.
CREATE FUNCTION browserd_try_jsonb(b BYTEA) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
	RETURN convert_from(b, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
	RETURN NULL;
END
$$;

CREATE TABLE projects (
	id              TEXT COLLATE "C" PRIMARY KEY,
	name            TEXT NOT NULL,
	owner_id        TEXT NOT NULL DEFAULT '',
	default_timeout BIGINT NOT NULL,
	concurrency     BIGINT NOT NULL,
	created_at      BIGINT,
	updated_at      BIGINT
);

CREATE TABLE sessions (
	id               TEXT COLLATE "C" PRIMARY KEY,
	project_id       TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
	status           TEXT COLLATE "C" NOT NULL,
	created_at       BIGINT,
	updated_at       BIGINT,
	started_at       BIGINT,
	expires_at       BIGINT,
	ended_at         BIGINT,
	end_reason       TEXT NOT NULL DEFAULT '',
	keep_alive       BOOLEAN NOT NULL DEFAULT FALSE,
	region           TEXT NOT NULL DEFAULT '',
	timeout          BIGINT NOT NULL DEFAULT 0,
	proxy_bytes      BIGINT NOT NULL DEFAULT 0,
	context_id       TEXT NOT NULL DEFAULT '',
	extension_id     TEXT NOT NULL DEFAULT '',
	user_metadata    BYTEA,
	browser_settings BYTEA,
	settings         BYTEA,
	request          BYTEA,
	node_id          TEXT COLLATE "C" NOT NULL DEFAULT '',
	pid              BIGINT NOT NULL DEFAULT 0,
	avg_cpu_usage    BIGINT,
	memory_usage     BIGINT,
	-- Only sessions with metadata pay for the decoding (and its subtransaction).
	metadata_json    JSONB GENERATED ALWAYS AS (
		CASE WHEN user_metadata IS NULL THEN NULL ELSE browserd_try_jsonb(user_metadata) END) STORED
);

CREATE INDEX sessions_project_created ON sessions (project_id, created_at);
CREATE INDEX sessions_status ON sessions (status);
CREATE INDEX sessions_node_status ON sessions (node_id, status);
-- CreateSession counts a project's live sessions under the project's row lock.
CREATE INDEX sessions_project_live ON sessions (project_id) WHERE status IN ('PENDING', 'RUNNING');

CREATE TABLE api_keys (
	id         TEXT COLLATE "C" PRIMARY KEY,
	project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
	name       TEXT NOT NULL DEFAULT '',
	hash       BYTEA NOT NULL UNIQUE,
	created_at BIGINT
);

CREATE INDEX api_keys_project ON api_keys (project_id, created_at);

CREATE TABLE settings (
	name  TEXT COLLATE "C" PRIMARY KEY,
	value BYTEA NOT NULL
);

-- Session artifacts: which sessions have artifacts to delete when their retention
-- expires, and their CDP logs. Files live in the blob store.
CREATE TABLE session_artifacts (
	session_id TEXT COLLATE "C" PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	purged_at  BIGINT
);

CREATE TABLE session_logs (
	session_id     TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	seq            BIGINT NOT NULL,
	method         TEXT NOT NULL,
	page_id        BIGINT NOT NULL,
	cdp_session_id TEXT NOT NULL DEFAULT '',
	frame_id       TEXT NOT NULL DEFAULT '',
	loader_id      TEXT NOT NULL DEFAULT '',
	request_body   BYTEA,
	request_raw    BYTEA,
	request_at     BIGINT,
	response_body  BYTEA,
	response_raw   BYTEA,
	response_at    BIGINT,
	PRIMARY KEY (session_id, seq)
);

-- Contexts (persisted browser state) and uploaded extensions.
CREATE TABLE contexts (
	id            TEXT COLLATE "C" PRIMARY KEY,
	project_id    TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
	name          TEXT NOT NULL DEFAULT '',
	-- name_key is bb.ContextNameKey(name): trimmed and lower-cased; NULL when unnamed,
	-- so that unnamed contexts never clash.
	name_key      TEXT COLLATE "C",
	created_at    BIGINT,
	updated_at    BIGINT,
	snapshot      TEXT NOT NULL DEFAULT '',
	snapshot_size BIGINT NOT NULL DEFAULT 0,
	snapshot_at   BIGINT
);

CREATE UNIQUE INDEX contexts_project_name ON contexts (project_id, name_key) WHERE name_key IS NOT NULL;

CREATE TABLE extensions (
	id         TEXT COLLATE "C" PRIMARY KEY,
	project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
	file_name  TEXT NOT NULL,
	created_at BIGINT,
	updated_at BIGINT,
	blob       TEXT NOT NULL DEFAULT '',
	size       BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX extensions_project ON extensions (project_id);
