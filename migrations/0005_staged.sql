-- Staged batches: in a cluster, each node writes the Parquet files of its
-- events and records them here; the node holding a table's commit lease
-- commits every node's batches in one append, with each node's watermark
-- in that commit. A batch holds its node's events after after_seq through
-- through_seq. Rows are deleted once a commit holds them; a row whose
-- events the table already holds is stale and deleted too.
CREATE TABLE zombi_staged (
	id             bigserial PRIMARY KEY,
	table_uuid     text NOT NULL,
	-- Where the table was when the batch was staged: a hint for finding it.
	namespace      text[] NOT NULL,
	name           text COLLATE "C" NOT NULL,
	node           text NOT NULL,
	after_seq      bigint NOT NULL CHECK (after_seq >= 0),
	through_seq    bigint NOT NULL CHECK (through_seq > after_seq),
	rows           bigint NOT NULL CHECK (rows > 0),
	oldest         timestamptz NOT NULL,
	-- Each file is iceberg-go's manifest-entry encoding of its DataFile,
	-- for the partition spec and schema of the same position.
	format_version int NOT NULL,
	spec_ids       int[] NOT NULL,
	schema_ids     int[] NOT NULL,
	files          bytea[] NOT NULL,
	created        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX zombi_staged_table ON zombi_staged (table_uuid, node, after_seq);
