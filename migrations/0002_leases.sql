-- Leases: which node does a piece of exclusive work (compacting a table)
-- until when. A node renews its lease while it works; an expired lease is
-- free for any node.
CREATE TABLE zombi_leases (
	name    text COLLATE "C" PRIMARY KEY,
	holder  text NOT NULL,
	expires timestamptz NOT NULL
);
