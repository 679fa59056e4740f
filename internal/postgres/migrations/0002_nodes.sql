-- The members of a cluster (bb.Node, docs/ARCHITECTURE.md "Cluster"). Times are the
-- database's clock in Unix milliseconds, like every other time here; a node never writes
-- its own clock into this table, so nodes whose clocks disagree still agree on who is late.
CREATE TABLE nodes (
	id           TEXT COLLATE "C" PRIMARY KEY,
	url          TEXT NOT NULL,
	state        TEXT COLLATE "C" NOT NULL,
	capacity     BIGINT NOT NULL DEFAULT 0,
	live         BIGINT NOT NULL DEFAULT 0,
	warm         TEXT[] NOT NULL DEFAULT '{}',
	version      TEXT NOT NULL DEFAULT '',
	started_at   BIGINT NOT NULL,
	heartbeat_at BIGINT NOT NULL
);

-- ExpireNodes looks only at live nodes.
CREATE INDEX nodes_live_heartbeat ON nodes (heartbeat_at) WHERE state IN ('active', 'draining');
