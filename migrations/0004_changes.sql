-- Changes: a row for every change to a table or view entry, written by a
-- trigger in the transaction that makes the change, so that every Zombi
-- process sharing the database learns of it and forgets what it cached
-- about the entry (catalog/postgres, FollowChanges). The trigger also sends
-- NOTIFY zombi_changes, which PostgreSQL delivers to the listening
-- processes when, and only if, the transaction commits; a process that
-- misses a notification finds the row when it next polls.
--
-- xid is the writing transaction's ID. seq is assigned at insert, so seqs
-- do not commit in order; a reader instead remembers the snapshot it last
-- read under and next reads the rows that were not visible in it.
CREATE TABLE zombi_changes (
	seq       bigserial PRIMARY KEY,
	xid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
	-- namespace is the key of zombi_namespaces (levels joined with 0x1F);
	-- no foreign key: the row outlives the entry and its namespace.
	namespace text COLLATE "C" NOT NULL,
	name      text COLLATE "C" NOT NULL,
	kind      text NOT NULL,
	-- at is when the row was written, moments before the commit.
	at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX zombi_changes_xid ON zombi_changes (xid);
CREATE INDEX zombi_changes_at ON zombi_changes (at);

-- Old rows are deleted. The one row here records the highest xid deleted
-- and counts the deletions, so that a reader whose last snapshot may not
-- have seen a deleted row knows it missed changes.
CREATE TABLE zombi_changes_pruned (
	one    boolean PRIMARY KEY DEFAULT true CHECK (one),
	xid    xid8 NOT NULL,
	prunes bigint NOT NULL
);

INSERT INTO zombi_changes_pruned (xid, prunes) VALUES ('0', 0);

CREATE FUNCTION zombi_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		INSERT INTO zombi_changes (namespace, name, kind) VALUES (OLD.namespace, OLD.name, OLD.kind);
	END IF;
	IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.namespace, NEW.name) IS DISTINCT FROM (OLD.namespace, OLD.name)) THEN
		INSERT INTO zombi_changes (namespace, name, kind) VALUES (NEW.namespace, NEW.name, NEW.kind);
	END IF;
	-- The same payload in one transaction is delivered once: one
	-- notification per transaction, however many entries it changes.
	PERFORM pg_notify('zombi_changes', '');
	RETURN NULL;
END
$$;

CREATE TRIGGER zombi_tables_insert_delete AFTER INSERT OR DELETE ON zombi_tables
	FOR EACH ROW EXECUTE FUNCTION zombi_log_change();

-- A commit that swaps a pointer onto itself changes nothing.
CREATE TRIGGER zombi_tables_update AFTER UPDATE ON zombi_tables
	FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION zombi_log_change();
