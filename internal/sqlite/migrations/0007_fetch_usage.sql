-- Bytes POST /v1/fetch read through managed proxies, per project (bb.ProjectStore
-- AddFetchProxyBytes); GET /v1/projects/{id}/usage adds them to the sessions' proxyBytes.
CREATE TABLE fetch_usage (
	project_id  TEXT PRIMARY KEY,
	proxy_bytes INTEGER NOT NULL DEFAULT 0
);
