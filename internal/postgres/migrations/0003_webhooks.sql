-- Webhooks and their durable outbox of deliveries, as internal/sqlite's 0004. Several
-- nodes deliver: a claim takes due rows FOR UPDATE SKIP LOCKED and leases them
-- (lease_owner, lease_until), so that each delivery is sent by one node at a time.

CREATE TABLE webhooks (
	id                  TEXT COLLATE "C" PRIMARY KEY,
	project_id          TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
	endpoint            TEXT COLLATE "C" NOT NULL,
	event_types         TEXT NOT NULL, -- JSON array of event type names
	secret              BYTEA NOT NULL,
	previous_secret     BYTEA,
	previous_expires_at BIGINT,
	created_at          BIGINT NOT NULL,
	updated_at          BIGINT NOT NULL
);

CREATE UNIQUE INDEX webhooks_project_endpoint ON webhooks (project_id, endpoint);
CREATE INDEX webhooks_project_created ON webhooks (project_id, created_at, id);

CREATE TABLE webhook_deliveries (
	id              TEXT COLLATE "C" PRIMARY KEY,
	webhook_id      TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	project_id      TEXT COLLATE "C" NOT NULL,
	event_id        TEXT COLLATE "C" NOT NULL,
	event_type      TEXT NOT NULL,
	payload         BYTEA NOT NULL,
	status          TEXT NOT NULL,
	attempts        TEXT NOT NULL DEFAULT '[]', -- JSON array of bb.WebhookAttempt
	created_at      BIGINT NOT NULL,
	next_attempt_at BIGINT,          -- NULL once delivered or failed
	lease_owner     TEXT NOT NULL DEFAULT '',
	lease_until     BIGINT NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at, id);
