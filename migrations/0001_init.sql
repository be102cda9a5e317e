-- Catalog pointers: namespaces, tables and idempotency receipts. Names
-- compare byte-wise (collation "C"), as the catalog.Store contract requires.

CREATE TABLE zombi_namespaces (
	-- key is Namespace.String(): the levels joined with the unit separator
	-- (0x1F), which no level contains.
	key        text COLLATE "C" PRIMARY KEY,
	levels     text[] NOT NULL,
	-- parent is the key of the enclosing namespace, NULL at the top level.
	-- The foreign key keeps a namespace from being dropped under a child.
	parent     text COLLATE "C" REFERENCES zombi_namespaces (key),
	properties jsonb NOT NULL DEFAULT '{}',
	CHECK (cardinality(levels) > 0),
	CHECK (key = array_to_string(levels, E'\x1f')),
	CHECK ((parent IS NULL) = (cardinality(levels) = 1))
);

-- Lists the children of a namespace in order, and serves the foreign key.
CREATE INDEX zombi_namespaces_parent ON zombi_namespaces (parent, key);

CREATE TABLE zombi_tables (
	-- The foreign key keeps a namespace from being dropped under a table.
	namespace         text COLLATE "C" NOT NULL REFERENCES zombi_namespaces (key),
	name              text COLLATE "C" NOT NULL,
	metadata_location text NOT NULL,
	PRIMARY KEY (namespace, name)
);

CREATE TABLE zombi_receipts (
	key     text PRIMARY KEY,
	op      text NOT NULL,
	status  integer NOT NULL,
	body    bytea NOT NULL,
	created timestamptz NOT NULL
);

CREATE INDEX zombi_receipts_created ON zombi_receipts (created);
