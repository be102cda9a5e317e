-- Views share the tables' namespace of names, so they live in the same
-- rows, told apart by kind. Each row also keeps its table or view location
-- (canonical, see internal/location) and UUID, so that the catalog can
-- refuse a location that overlaps another table's or a UUID another table
-- has. Rows written before this migration have an empty location and a
-- NULL uuid until the catalog backfills them from their metadata.

ALTER TABLE zombi_tables
	ADD COLUMN kind text NOT NULL DEFAULT 'table' CHECK (kind IN ('table', 'view')),
	ADD COLUMN location text COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN uuid text;

-- Overlap lookups: equality on the containing locations, and a range scan
-- for the locations below one (byte order, hence collation "C").
CREATE INDEX zombi_tables_location ON zombi_tables (location) WHERE location <> '';

CREATE UNIQUE INDEX zombi_tables_uuid ON zombi_tables (uuid);
