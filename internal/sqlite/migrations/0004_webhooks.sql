-- Webhooks and their durable outbox of deliveries (docs/COMPATIBILITY.md "Webhooks").
-- Times are Unix milliseconds (UTC); NULL is the zero time. Secrets are sealed by
-- internal/webhooks with the server's webhook key; the store never holds them in clear.

CREATE TABLE webhooks (
	id                  TEXT PRIMARY KEY,
	project_id          TEXT NOT NULL REFERENCES projects (id),
	endpoint            TEXT NOT NULL,
	event_types         TEXT NOT NULL, -- JSON array of event type names
	secret              BLOB NOT NULL,
	previous_secret     BLOB,
	previous_expires_at INTEGER,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL
);

CREATE UNIQUE INDEX webhooks_project_endpoint ON webhooks (project_id, endpoint);
CREATE INDEX webhooks_project_created ON webhooks (project_id, created_at, id);

CREATE TABLE webhook_deliveries (
	id              TEXT PRIMARY KEY,
	webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	project_id      TEXT NOT NULL,
	event_id        TEXT NOT NULL,
	event_type      TEXT NOT NULL,
	payload         BLOB NOT NULL,
	status          TEXT NOT NULL,
	attempts        TEXT NOT NULL DEFAULT '[]', -- JSON array of bb.WebhookAttempt
	created_at      INTEGER NOT NULL,
	next_attempt_at INTEGER,          -- NULL once delivered or failed
	lease_owner     TEXT NOT NULL DEFAULT '',
	lease_until     INTEGER NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at, id);
