-- Cluster membership and cluster-wide idempotency (issue 14).
--
-- Every node on Postgres has a row in zombi_nodes, keyed by its node ID
-- (the hot tier's). The row is a lease on the ID: a process renews its
-- heartbeat every few seconds and no other process (another token) may
-- take the ID while the heartbeat is fresh. A node that leaves keeps its
-- row, so its stream is never given to another node: a table's offsets
-- are unique because every node hands them out from its own stream.
CREATE TABLE zombi_nodes (
	node_id          text COLLATE "C" PRIMARY KEY,
	stream           integer NOT NULL UNIQUE CHECK (stream >= 0 AND stream < 512),
	-- cluster is whether the node runs with --cluster; a node without it
	-- must be the only live node.
	cluster          boolean NOT NULL,
	url              text NOT NULL DEFAULT '',
	-- token names the process holding the ID.
	token            text NOT NULL,
	started          timestamptz NOT NULL,
	heartbeat        timestamptz NOT NULL,
	-- left is when the node shut down gracefully; NULL while it runs (or
	-- since it died).
	left_at          timestamptz,
	-- What the node reports with each heartbeat.
	backlog_bytes    bigint NOT NULL DEFAULT 0,
	oldest_unflushed timestamptz,
	last_commit      timestamptz
);

-- Idempotency keys claimed across the cluster. A node claims a key before
-- it stores the event (offset NULL: pending) and records the offset once
-- it is stored. Keys are bytes: PostgreSQL text cannot hold NUL.
CREATE TABLE zombi_idempotency_claims (
	table_uuid text COLLATE "C" NOT NULL,
	key        bytea NOT NULL,
	node_id    text COLLATE "C" NOT NULL,
	"offset"   bigint,
	claimed    timestamptz NOT NULL,
	PRIMARY KEY (table_uuid, key)
);

-- Expiry scans by age; a starting node finds its pending claims.
CREATE INDEX zombi_idempotency_claims_claimed ON zombi_idempotency_claims (claimed);
CREATE INDEX zombi_idempotency_claims_pending ON zombi_idempotency_claims (node_id) WHERE "offset" IS NULL;
