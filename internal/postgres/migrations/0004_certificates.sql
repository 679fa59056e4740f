-- CA certificates uploaded through /v1/certificates (bb.Certificate). The PEM is the
-- certificate alone, re-encoded by the server (at most a few KiB). Times are Unix
-- milliseconds (UTC).

CREATE TABLE certificates (
	id         TEXT COLLATE "C" PRIMARY KEY,
	project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
	created_at BIGINT,
	updated_at BIGINT,
	pem        TEXT NOT NULL
);

CREATE INDEX certificates_project ON certificates (project_id, created_at);
