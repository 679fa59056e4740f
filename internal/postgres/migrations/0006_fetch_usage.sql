-- Bytes POST /v1/fetch read through managed proxies, per project (bb.ProjectStore
-- AddFetchProxyBytes); GET /v1/projects/{id}/usage adds them to the sessions' proxyBytes.
CREATE TABLE fetch_usage (
	project_id  TEXT COLLATE "C" PRIMARY KEY,
	proxy_bytes BIGINT NOT NULL DEFAULT 0
);
