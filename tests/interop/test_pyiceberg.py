"""PyIceberg against zombi's REST catalog, once per server shape.

The client catalog is configured with type=rest and the URI only; for the
postgres-s3 shape every S3 setting PyIceberg uses comes from the table's
loadTable config. Every assertion names the engine, the shape and the step.
"""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse

import pyarrow as pa
import pytest
import requests
from pyiceberg.exceptions import (
    BadRequestError,
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
from pyiceberg.types import DoubleType, IntegerType, LongType, NestedField, StringType, TimestampType

from conftest import Zombi
from story import Story

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "ts", TimestampType(), required=False),
    NestedField(3, "category", StringType(), required=False),
    NestedField(4, "value", DoubleType(), required=False),
)
SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=DayTransform(), name="ts_day"),
    PartitionField(source_id=3, field_id=1001, transform=IdentityTransform(), name="category"),
)
BASE_COLUMNS = ["id", "ts", "category", "value"]
CATEGORIES = ["alpha", "beta", "gamma"]
EPOCH = dt.datetime(2024, 3, 1, 0, 0, 0)
ENGINE = "pyiceberg"


# ---------------------------------------------------------------------------
# Data


def make_rows(start: int, n: int, note: bool = False) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        row = {
            "id": i,
            # 37 minutes apart: several days, a few hundred rows per shape
            "ts": EPOCH + dt.timedelta(minutes=37 * i, microseconds=i),
            "category": CATEGORIES[i % len(CATEGORIES)],
            "value": None if i % 50 == 7 else i * 0.25,
        }
        if note:
            row["note"] = f"note-{i}"
        rows.append(row)
    return rows


def arrow_schema(note: bool) -> pa.Schema:
    fields = [
        pa.field("id", pa.int64()),
        pa.field("ts", pa.timestamp("us")),
        pa.field("category", pa.string()),
        pa.field("value", pa.float64()),
    ]
    if note:
        fields.append(pa.field("note", pa.string()))
    return pa.schema(fields)


def to_arrow(rows: list[dict], note: bool = False) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=arrow_schema(note))


def sorted_rows(table: pa.Table, columns: list[str] | None = None) -> list[dict]:
    if columns is not None:
        table = table.select(columns)
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def expected_partitions(rows: list[dict]) -> set[tuple[dt.date, str]]:
    return {(r["ts"].date(), r["category"]) for r in rows}


def location_files(z: Zombi, location: str) -> list[str]:
    return z.files_under(location)


# ---------------------------------------------------------------------------
# The table's life: create, append, evolve, time travel, partitions, ETags,
# transactions, purge.


def test_table_lifecycle(zombi: Zombi, catalog, ns: str):
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "events")
    first_rows = make_rows(0, 300)
    second_rows = make_rows(300, 150, note=True)

    with s.step("create namespace"):
        catalog.create_namespace(ns, {"owner": "interop"})
        s.check((ns,) in catalog.list_namespaces(), f"list_namespaces() lacks {ns!r}")

    with s.step("create partitioned table"):
        table = catalog.create_table(ident, SCHEMA, partition_spec=SPEC)
        loc = table.location()
        want_prefix = zombi.warehouse.rstrip("/") + "/"
        s.check(loc.startswith(want_prefix), f"table location {loc!r} is not under the warehouse {want_prefix!r}")
        s.equal(table.metadata.format_version, 2, "format version")
        s.equal(catalog.list_tables(ns), [ident], "list_tables after create")

    with s.step("append first batch"):
        table.append(to_arrow(first_rows))
        table = catalog.load_table(ident)
        snaps = table.snapshots()
        s.equal(len(snaps), 1, "snapshots after first append")
        first_id = snaps[0].snapshot_id
        s.equal(table.current_snapshot().snapshot_id, first_id, "current snapshot")
        s.equal(snaps[0].summary.operation.value, "append", "operation of the first snapshot")

    with s.step("scan first batch"):
        got = sorted_rows(table.scan().to_arrow())
        s.rows_equal(got, first_rows, "rows read back after the first append")

    with s.step("add column"):
        with table.update_schema() as upd:
            upd.add_column("note", StringType())
        table = catalog.load_table(ident)
        names = [f.name for f in table.schema().fields]
        s.equal(names, BASE_COLUMNS + ["note"], "columns after add_column")
        s.equal(table.schema().find_field("note").field_id, 5, "field id of the new column")
        s.equal(len(table.metadata.schemas), 2, "schemas in metadata")

    with s.step("append second batch with the new column"):
        table.append(to_arrow(second_rows, note=True))
        table = catalog.load_table(ident)
        snaps = table.snapshots()
        s.equal(len(snaps), 2, "snapshots after the second append")
        second_id = table.current_snapshot().snapshot_id
        s.check(second_id != first_id, "second append did not make a new current snapshot")
        s.equal(table.current_snapshot().parent_snapshot_id, first_id, "parent of the second snapshot")

    with s.step("read the first snapshot (time travel)"):
        old = table.scan(snapshot_id=first_id).to_arrow()
        if "note" in old.column_names:
            notes = set(old.column("note").to_pylist())
            s.equal(notes, {None}, "values of the new column in the old snapshot")
        s.rows_equal(sorted_rows(old, BASE_COLUMNS), first_rows, "rows of the first snapshot")

    with s.step("read the second snapshot"):
        all_rows = [dict(r, note=None) for r in first_rows] + second_rows
        for label, scan in (
            ("current", table.scan()),
            (f"snapshot_id={second_id}", table.scan(snapshot_id=second_id)),
        ):
            got = scan.to_arrow()
            s.equal(got.column_names, BASE_COLUMNS + ["note"], f"columns of the {label} scan")
            s.rows_equal(sorted_rows(got), all_rows, f"rows of the {label} scan (old rows with note=null)")

    with s.step("partition spec and data file partitions"):
        spec = table.spec()
        s.equal(spec.spec_id, 0, "spec id")
        got_fields = [(f.source_id, f.field_id, str(f.transform), f.name) for f in spec.fields]
        s.equal(
            got_fields,
            [(2, 1000, "day", "ts_day"), (3, 1001, "identity", "category")],
            "partition fields (source id, field id, transform, name)",
        )
        files = table.inspect.files()
        parts = [p for p in files.column("partition").to_pylist()]
        got_parts = {(p["ts_day"], p["category"]) for p in parts}
        want_parts = expected_partitions(first_rows + second_rows)
        s.equal(got_parts, want_parts, "partition tuples of the data files (inspect.files)")
        s.equal(sum(files.column("record_count").to_pylist()), len(all_rows), "record count over data files")
        # Each file holds only rows of its own partition (column bounds).
        for path, part, metrics in zip(
            files.column("file_path").to_pylist(), parts, files.column("readable_metrics").to_pylist()
        ):
            cat_m, ts_m = metrics["category"], metrics["ts"]
            s.check(
                cat_m["lower_bound"] == cat_m["upper_bound"] == part["category"],
                f"file {path} in partition {part} has category bounds {cat_m['lower_bound']!r}..{cat_m['upper_bound']!r}",
            )
            s.check(
                ts_m["lower_bound"].date() == ts_m["upper_bound"].date() == part["ts_day"],
                f"file {path} in partition {part} has ts bounds {ts_m['lower_bound']}..{ts_m['upper_bound']}",
            )
            s.check(path.startswith(loc + "/"), f"data file {path} is outside the table location {loc}")
        # The partition filter prunes: one day and category plans only its files.
        day, cat = sorted(want_parts)[0]
        start = dt.datetime.combine(day, dt.time())
        expr = And(
            EqualTo("category", cat),
            And(GreaterThanOrEqual("ts", start.isoformat()), LessThan("ts", (start + dt.timedelta(days=1)).isoformat())),
        )
        planned = list(table.scan(row_filter=expr).plan_files())
        s.check(len(planned) > 0, f"no files planned for partition ({day}, {cat})")
        for task in planned:
            s.equal(
                (task.file.partition[0], task.file.partition[1]),
                ((day - dt.date(1970, 1, 1)).days, cat),
                f"partition of planned file {task.file.file_path}",
            )

    with s.step("delete a partition's rows"):
        # Whole identity partitions match, so PyIceberg drops their files:
        # they stay referenced by the older snapshots (and purge must find them).
        table.delete(delete_filter=EqualTo("category", "gamma"))
        table = catalog.load_table(ident)
        s.equal(len(table.snapshots()), 3, "snapshots after the delete")
        s.equal(table.current_snapshot().summary.operation.value, "delete", "operation of the delete snapshot")
        live_rows = [r for r in all_rows if r["category"] != "gamma"]
        s.rows_equal(sorted_rows(table.scan().to_arrow()), live_rows, "rows after deleting category gamma")
        s.rows_equal(
            sorted_rows(table.scan(snapshot_id=second_id).to_arrow()), all_rows, "rows of the snapshot before the delete"
        )

    with s.step("loadTable with If-None-Match"):
        url = zombi.table_url(ns, "events")
        r1 = requests.get(url, timeout=30)
        s.equal(r1.status_code, 200, f"GET {url} status (body {r1.text[:300]!r})")
        etag = r1.headers.get("ETag")
        s.check(etag, f"GET {url} has no ETag header (headers {dict(r1.headers)})")
        body = r1.json()
        s.equal(body.get("metadata-location"), table.metadata_location, "metadata-location in the loadTable body")
        if zombi.s3 is not None:
            cfg = body.get("config") or {}
            want_cfg = {
                "s3.endpoint": zombi.s3.endpoint,
                "s3.access-key-id": zombi.s3.access_key,
                "s3.secret-access-key": zombi.s3.secret_key,
                "s3.region": zombi.s3.region,
            }
            got_cfg = {k: cfg.get(k) for k in want_cfg}
            s.equal(got_cfg, want_cfg, "S3 settings vended in loadTable config")
        r2 = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
        s.equal(r2.status_code, 304, f"GET with If-None-Match: {etag} before any commit (body {r2.text[:300]!r})")
        s.equal(r2.content, b"", "body of the 304 response")
        s.equal(r2.headers.get("ETag"), etag, "ETag header of the 304 response")

    with s.step("loadTable with If-None-Match after a commit"):
        table.transaction().set_properties({"interop.etag": "changed"}).commit_transaction()
        r3 = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
        s.equal(r3.status_code, 200, f"GET with the old If-None-Match after a commit (body {r3.text[:300]!r})")
        new_etag = r3.headers.get("ETag")
        s.check(new_etag and new_etag != etag, f"ETag after a commit is {new_etag!r}, old was {etag!r}")
        s.equal(r3.json()["metadata"]["properties"].get("interop.etag"), "changed", "property in the 200 body")
        r4 = requests.get(url, headers={"If-None-Match": new_etag}, timeout=30)
        s.equal(r4.status_code, 304, f"GET with the new ETag {new_etag}")

    with s.step("transaction: set_properties + update_schema commit atomically"):
        table = catalog.load_table(ident)
        meta_files_before = [f for f in location_files(zombi, loc) if f.endswith(".metadata.json")]
        schema_id_before = table.schema().schema_id
        with table.transaction() as tx:
            tx.set_properties({"interop.tx": "yes", "owner.team": "zombi"})
            with tx.update_schema() as upd:
                upd.add_column("score", IntegerType(), doc="added in a transaction")
        table = catalog.load_table(ident)
        props = table.properties
        s.equal(
            (props.get("interop.tx"), props.get("owner.team")), ("yes", "zombi"), "properties after the transaction"
        )
        s.equal(
            [f.name for f in table.schema().fields],
            BASE_COLUMNS + ["note", "score"],
            "columns after the transaction",
        )
        s.check(table.schema().schema_id != schema_id_before, "schema id did not change after the transaction")
        meta_files_after = [f for f in location_files(zombi, loc) if f.endswith(".metadata.json")]
        new_meta = sorted(set(meta_files_after) - set(meta_files_before))
        s.equal(len(new_meta), 1, f"new metadata files written by one transaction ({new_meta})")
        s.equal(new_meta[0], table.metadata_location, "the transaction's metadata file is the current one")
        got = table.scan().to_arrow()
        s.equal(got.column("score").null_count, len(live_rows), "score is null for every existing row")
        # Every metadata file the catalog wrote is either current or in the
        # metadata log (what purge and other engines rely on).
        logged = {e.metadata_file for e in table.metadata.metadata_log} | {table.metadata_location}
        s.equal(set(meta_files_after), logged, "metadata files on storage vs metadata-log + current")

    with s.step("drop with purge"):
        before = location_files(zombi, loc)
        s.check(any("/data/" in f for f in before), f"no data files under {loc} before the purge: {before}")
        s.check(any("/metadata/" in f for f in before), f"no metadata files under {loc} before the purge: {before}")
        catalog.purge_table(ident)
        with pytest.raises(NoSuchTableError):
            catalog.load_table(ident)
        s.check(not catalog.table_exists(ident), "table_exists() is true after purge")
        s.equal(catalog.list_tables(ns), [], "list_tables after purge")
        r = requests.get(url, timeout=30)
        s.equal(r.status_code, 404, f"GET {url} after purge")
        left = location_files(zombi, loc)
        s.equal(left, [], f"files left under {loc} after purge (there were {len(before)})")

    with s.step("drop the empty namespace"):
        catalog.drop_namespace(ns)
        s.check((ns,) not in catalog.list_namespaces(), f"{ns!r} still listed after drop")


# ---------------------------------------------------------------------------
# Namespaces


def test_namespaces(zombi: Zombi, catalog, ns: str):
    s = Story(ENGINE, zombi.shape)
    props = {"owner": "interop", "comment": "made by test_namespaces", "keep": "1"}

    with s.step("create namespaces"):
        catalog.create_namespace(ns, props)
        catalog.create_namespace((ns, "child"), {"level": "2"})
        with pytest.raises(NamespaceAlreadyExistsError):
            catalog.create_namespace(ns)

    with s.step("list namespaces"):
        top = catalog.list_namespaces()
        s.check((ns,) in top, f"list_namespaces() = {top} lacks {ns!r}")
        s.check((ns, "child") not in top, f"list_namespaces() lists the child namespace at top level: {top}")
        s.equal(catalog.list_namespaces(ns), [(ns, "child")], f"list_namespaces({ns!r})")
        s.check(catalog.namespace_exists((ns, "child")), "namespace_exists on the child")

    with s.step("namespace properties round-trip"):
        got = catalog.load_namespace_properties(ns)
        s.equal({k: got.get(k) for k in props}, props, "properties given at create")
        s.equal(catalog.load_namespace_properties((ns, "child")).get("level"), "2", "child's property")
        summary = catalog.update_namespace_properties(
            ns, removals={"comment", "not-there"}, updates={"owner": "someone-else", "added": "x"}
        )
        s.equal(sorted(summary.removed), ["comment"], "removed in the update summary")
        s.equal(sorted(summary.updated), ["added", "owner"], "updated in the update summary")
        s.equal(sorted(summary.missing), ["not-there"], "missing in the update summary")
        got = catalog.load_namespace_properties(ns)
        s.check("comment" not in got, f"removed property still present: {got}")
        s.equal(
            {k: got.get(k) for k in ("owner", "added", "keep")},
            {"owner": "someone-else", "added": "x", "keep": "1"},
            "properties after the update",
        )

    with s.step("tables are listed"):
        t1 = catalog.create_table((ns, "t1"), SCHEMA)
        catalog.create_table((ns, "t2"), SCHEMA, partition_spec=SPEC)
        with pytest.raises(TableAlreadyExistsError):
            catalog.create_table((ns, "t1"), SCHEMA)
        s.equal(sorted(catalog.list_tables(ns)), [(ns, "t1"), (ns, "t2")], f"list_tables({ns!r})")
        s.equal(catalog.list_tables((ns, "child")), [], "list_tables of the child namespace")

    with s.step("table in a nested namespace"):
        nested = catalog.create_table((ns, "child", "deep"), SCHEMA)
        nested.append(to_arrow(make_rows(0, 10)))
        s.equal(catalog.list_tables((ns, "child")), [(ns, "child", "deep")], "list_tables of the child namespace")
        got = catalog.load_table((ns, "child", "deep")).scan().to_arrow()
        s.rows_equal(sorted_rows(got), make_rows(0, 10), "rows of the nested table")

    with s.step("dropping a non-empty namespace fails"):
        with pytest.raises(NamespaceNotEmptyError):
            catalog.drop_namespace(ns)
        s.check(catalog.namespace_exists(ns), "namespace gone after a refused drop")
        s.equal(sorted(catalog.list_tables(ns)), [(ns, "t1"), (ns, "t2")], "tables after a refused drop")

    with s.step("drop tables, then namespaces"):
        t1_files = zombi.files_under(t1.location())
        s.check(t1_files, f"no files under {t1.location()} before the drop")
        catalog.drop_table((ns, "t1"))
        s.equal(zombi.files_under(t1.location()), t1_files, "files under the table after a drop without purge")
        catalog.purge_table((ns, "t2"))
        with pytest.raises(NamespaceNotEmptyError):
            catalog.drop_namespace((ns, "child"))
        catalog.purge_table((ns, "child", "deep"))
        catalog.drop_namespace((ns, "child"))
        catalog.drop_namespace(ns)
        s.check(not catalog.namespace_exists(ns), "namespace_exists after drop")
        with pytest.raises(NoSuchNamespaceError):
            catalog.load_namespace_properties(ns)
        s.check((ns,) not in catalog.list_namespaces(), "namespace still listed after drop")


# ---------------------------------------------------------------------------
# Concurrency


# PyIceberg (0.12) retries a commit that produced snapshots up to
# commit.retry.num-retries times (default 4), re-planning on the refreshed
# table; 0 turns that off so the 409 reaches the caller.
NO_RETRY = {"commit.retry.num-retries": "0"}


@pytest.mark.parametrize("start", ["empty", "with-snapshot"])
def test_concurrent_append_conflict(zombi: Zombi, catalog, ns: str, start: str):
    """Two writers load the table at the same version and both append: the
    second commit must fail with CommitFailedException (HTTP 409), and
    nothing of it may show in the table."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "contended")
    base = make_rows(0, 30) if start == "with-snapshot" else []
    a_rows = make_rows(1000, 20)
    b_rows = make_rows(2000, 20)

    with s.step(f"setup ({start})"):
        catalog.create_namespace(ns)
        catalog.create_table(ident, SCHEMA, partition_spec=SPEC, properties=NO_RETRY)
        if base:
            catalog.load_table(ident).append(to_arrow(base))
        writer_a = zombi.catalog("writer-a").load_table(ident)
        writer_b = zombi.catalog("writer-b").load_table(ident)
        s.equal(writer_a.metadata_location, writer_b.metadata_location, "both writers loaded the same version")
        parent = writer_a.current_snapshot().snapshot_id if base else None

    with s.step("first writer appends"):
        writer_a.append(to_arrow(a_rows))

    with s.step("second writer appends on the stale version"):
        with pytest.raises(CommitFailedException) as exc:
            writer_b.append(to_arrow(b_rows))
        print(f"{s.where()}: CommitFailedException: {exc.value}")

    with s.step("table holds the first writer's rows only"):
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), base + a_rows, "rows after the conflict")
        s.equal(len(table.snapshots()), (1 if base else 0) + 1, "snapshots after the conflict")
        s.equal(table.current_snapshot().parent_snapshot_id, parent, "parent of the winning snapshot")

    with s.step("second writer retries after a refresh"):
        writer_b.refresh()
        writer_b.append(to_arrow(b_rows))
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), base + a_rows + b_rows, "rows after the retry")


def test_concurrent_append_client_retry(zombi: Zombi, catalog, ns: str):
    """With PyIceberg's default commit retries, the losing writer gets a 409,
    refreshes, rebases its append on the winner's snapshot and lands it."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "contended")
    base, a_rows, b_rows = make_rows(0, 30), make_rows(1000, 20), make_rows(2000, 20)

    with s.step("setup"):
        catalog.create_namespace(ns)
        catalog.create_table(ident, SCHEMA, partition_spec=SPEC)
        catalog.load_table(ident).append(to_arrow(base))
        writer_a = zombi.catalog("writer-a").load_table(ident)
        writer_b = zombi.catalog("writer-b").load_table(ident)

    with s.step("both writers append"):
        writer_a.append(to_arrow(a_rows))
        writer_b.append(to_arrow(b_rows))  # 409 inside, retried by PyIceberg

    with s.step("both appends landed, one after the other"):
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), base + a_rows + b_rows, "rows after both appends")
        snaps = table.snapshots()
        s.equal(len(snaps), 3, "snapshots after both appends")
        s.equal(
            [x.parent_snapshot_id for x in snaps],
            [None, snaps[0].snapshot_id, snaps[1].snapshot_id],
            "snapshot parents form one line",
        )


def test_transaction_conflict_applies_nothing(zombi: Zombi, catalog, ns: str):
    """A transaction whose requirements fail (its schema is stale) commits
    none of its updates, not even the ones without requirements."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "tx")

    with s.step("setup"):
        catalog.create_namespace(ns)
        catalog.create_table(ident, SCHEMA, properties=NO_RETRY)
        stale = zombi.catalog("stale").load_table(ident)
        other = zombi.catalog("other").load_table(ident)

    with s.step("another writer changes the schema"):
        with other.update_schema() as upd:
            upd.add_column("other_col", StringType())

    with s.step("stale transaction fails"):
        with pytest.raises(CommitFailedException):
            with stale.transaction() as tx:
                tx.set_properties({"stale.prop": "should-not-land"})
                with tx.update_schema() as upd:
                    upd.add_column("stale_col", LongType())

    with s.step("nothing of the failed transaction landed"):
        table = catalog.load_table(ident)
        s.check("stale.prop" not in table.properties, f"property of the failed transaction landed: {table.properties}")
        names = [f.name for f in table.schema().fields]
        s.equal(names, BASE_COLUMNS + ["other_col"], "columns after the failed transaction")


# ---------------------------------------------------------------------------
# More table operations


def test_create_table_transaction(zombi: Zombi, catalog, ns: str):
    """create_table_transaction (stage-create, then one commit with
    assert-create) makes the table and its first snapshot at once."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "staged")
    rows = make_rows(0, 100)

    with s.step("stage the table"):
        catalog.create_namespace(ns)
        tx = catalog.create_table_transaction(ident, SCHEMA, partition_spec=SPEC, properties={"staged": "yes"})
        s.check(not catalog.table_exists(ident), "a staged table exists before its transaction commits")

    with s.step("append and commit"):
        tx.append(to_arrow(rows))
        tx.commit_transaction()

    with s.step("the table has its rows"):
        table = catalog.load_table(ident)
        s.equal(table.properties.get("staged"), "yes", "property given at stage-create")
        s.equal(len(table.snapshots()), 1, "snapshots after the create transaction")
        s.rows_equal(sorted_rows(table.scan().to_arrow()), rows, "rows of the staged table")
        s.check(
            table.location().startswith(zombi.warehouse.rstrip("/") + "/"),
            f"location {table.location()} is not under the warehouse {zombi.warehouse}",
        )

    with s.step("a second create of the same name fails"):
        with pytest.raises(TableAlreadyExistsError):
            tx2 = catalog.create_table_transaction(ident, SCHEMA)
            tx2.commit_transaction()


def test_partition_evolution(zombi: Zombi, catalog, ns: str):
    """After update_spec, new files use the new spec and old ones keep theirs;
    a scan reads both."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "evolving")
    first, second = make_rows(0, 60), make_rows(60, 60)

    with s.step("create with identity(category) and append"):
        catalog.create_namespace(ns)
        spec = PartitionSpec(PartitionField(3, 1000, IdentityTransform(), "category"))
        table = catalog.create_table(ident, SCHEMA, partition_spec=spec)
        table.append(to_arrow(first))

    with s.step("add bucket(4, id) to the spec and append"):
        with table.update_spec() as upd:
            upd.add_field("id", BucketTransform(4), "id_bucket")
        table = catalog.load_table(ident)
        s.equal(table.spec().spec_id, 1, "default spec id after update_spec")
        s.equal([f.name for f in table.spec().fields], ["category", "id_bucket"], "fields of the new spec")
        s.equal(sorted(table.specs()), [0, 1], "spec ids in metadata")
        table.append(to_arrow(second))

    with s.step("files keep their spec; rows are all there"):
        table = catalog.load_table(ident)
        files = table.inspect.files()
        by_spec = {}
        for spec_id, n in zip(files.column("spec_id").to_pylist(), files.column("record_count").to_pylist()):
            by_spec[spec_id] = by_spec.get(spec_id, 0) + n
        s.equal(by_spec, {0: len(first), 1: len(second)}, "rows per partition spec id")
        s.rows_equal(sorted_rows(table.scan().to_arrow()), first + second, "rows across both specs")


def test_rename_table(zombi: Zombi, catalog, ns: str):
    s = Story(ENGINE, zombi.shape)
    rows = make_rows(0, 40)

    with s.step("create and append"):
        catalog.create_namespace(ns)
        catalog.create_namespace(ns + "_to")
        table = catalog.create_table((ns, "before"), SCHEMA, partition_spec=SPEC)
        table.append(to_arrow(rows))

    with s.step("rename across namespaces"):
        catalog.rename_table((ns, "before"), (ns + "_to", "after"))
        with pytest.raises(NoSuchTableError):
            catalog.load_table((ns, "before"))
        s.equal(catalog.list_tables(ns), [], f"list_tables({ns!r}) after the rename")
        s.equal(catalog.list_tables(ns + "_to"), [(ns + "_to", "after")], "list_tables of the target namespace")
        moved = catalog.load_table((ns + "_to", "after"))
        s.equal(moved.metadata.table_uuid, table.metadata.table_uuid, "table uuid after the rename")
        s.rows_equal(sorted_rows(moved.scan().to_arrow()), rows, "rows after the rename")

    with s.step("the renamed table takes commits"):
        moved.append(to_arrow(make_rows(40, 10)))
        got = catalog.load_table((ns + "_to", "after")).scan().to_arrow()
        s.rows_equal(sorted_rows(got), make_rows(0, 50), "rows after appending to the renamed table")


def test_parallel_appends_one_winner(zombi: Zombi, catalog, ns: str):
    """Writers that loaded the same version append at the same moment: per
    round exactly one commit wins, every other one gets CommitFailedException
    (never a 500 or CommitStateUnknown), and the table holds exactly the
    winners' rows."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "race")
    writers, rounds = 4, 2

    with s.step("setup"):
        catalog.create_namespace(ns)
        catalog.create_table(ident, SCHEMA, properties=NO_RETRY)

    won: list[int] = []
    for rnd in range(rounds):
        with s.step(f"round {rnd}: {writers} concurrent appends"):
            tables = [zombi.catalog(f"w{i}").load_table(ident) for i in range(writers)]
            s.equal(len({t.metadata_location for t in tables}), 1, "writers loaded one version")
            barrier = threading.Barrier(writers)
            results: list = [None] * writers

            def write(i: int) -> None:
                barrier.wait(timeout=30)
                try:
                    tables[i].append(to_arrow(make_rows(rnd * 1000 + i * 100, 5)))
                    results[i] = "ok"
                except CommitFailedException:
                    results[i] = "conflict"
                except Exception as e:  # reported below
                    results[i] = f"{type(e).__name__}: {e}"

            threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            s.check(all(r in ("ok", "conflict") for r in results), f"unexpected outcomes: {results}")
            s.equal(results.count("ok"), 1, f"winning commits (outcomes {results})")
            won.append(rnd * 1000 + results.index("ok") * 100)

    with s.step("table holds exactly the winners' rows"):
        table = catalog.load_table(ident)
        want = sorted((r for w in won for r in make_rows(w, 5)), key=lambda r: r["id"])
        s.rows_equal(sorted_rows(table.scan().to_arrow()), want, "rows after the races")
        s.equal(len(table.snapshots()), rounds, "snapshots after the races")


# Table names that are legal in the REST spec but special in URIs. The catalog
# builds the default location from the name, so each must either work end to
# end (create, append, read, purge leaves no file) or be refused at create
# with a 400; never half-work.
ODD_NAMES = ["with space", "événements", "dotted.name", "pct%1Fname", "pct%2Fname", "q?mark", "hash#name"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_unusual_table_names(zombi: Zombi, catalog, ns: str, name: str):
    s = Story(ENGINE, zombi.shape)
    ident = (ns, name)
    rows = make_rows(0, 20)

    with s.step(f"create {name!r}"):
        catalog.create_namespace(ns)
        try:
            table = catalog.create_table(ident, SCHEMA, partition_spec=SPEC)
        except BadRequestError as e:
            s.check(not catalog.table_exists(ident), f"create of {name!r} refused ({e}) but the table exists")
            return
        s.equal(catalog.list_tables(ns), [ident], "list_tables")
        loc = table.location()

    with s.step(f"append to and read {name!r}"):
        table.append(to_arrow(rows))
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), rows, "rows read back")
        files = zombi.files_under(loc)
        meta = [f for f in files if f.endswith(".metadata.json")]
        data = [f for f in files if f.endswith(".parquet")]
        s.check(
            meta and data,
            f"the catalog's metadata files and the engine's data files are not both under the "
            f"table location {loc!r}: metadata {meta}, data {data}",
        )

    with s.step(f"purge {name!r}"):
        catalog.purge_table(ident)
        s.check(not catalog.table_exists(ident), "table exists after purge")
        s.equal(zombi.files_under(loc), [], f"files left under {loc!r} after purge")


# ---------------------------------------------------------------------------
# The write operations Spark's SQL has, through PyIceberg's API


def test_write_operations(zombi: Zombi, catalog, ns: str):
    """upsert (MERGE's counterpart), overwrite with a filter, a tag,
    rename_column, and expiring the snapshots no ref keeps."""
    s = Story(ENGINE, zombi.shape)
    ident = (ns, "ops")
    rows = {r["id"]: r for r in make_rows(0, 120)}
    live = dict(rows)

    def renamed(r: dict) -> dict:
        return {"id": r["id"], "ts": r["ts"], "category": r["category"], "amount": r["value"]}

    with s.step("create and append"):
        catalog.create_namespace(ns)
        table = catalog.create_table(ident, SCHEMA, partition_spec=SPEC)
        table.append(to_arrow(list(rows.values())))
        table = catalog.load_table(ident)
        first_id = table.current_snapshot().snapshot_id

    with s.step("tag the first snapshot"):
        table.manage_snapshots().create_tag(first_id, "first").commit()
        refs = zombi.rest_table(ns, "ops")["metadata"]["refs"]
        s.equal(refs.get("first"), {"snapshot-id": first_id, "type": "tag"}, "ref 'first' in the catalog")

    with s.step("upsert: update matching ids, insert new ones"):
        changes = [dict(live[i], value=-1.0) for i in (3, 4, 5)] + make_rows(500, 4)
        res = table.upsert(to_arrow(changes), join_cols=["id"])
        s.equal((res.rows_updated, res.rows_inserted), (3, 4), "rows updated and inserted by upsert")
        live.update({r["id"]: r for r in changes})
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), [live[i] for i in sorted(live)], "rows after upsert")

    with s.step("overwrite with a filter"):
        beta = [dict(r, value=0.5) for r in live.values() if r["category"] == "beta" and r["id"] < 30]
        table.overwrite(to_arrow(beta), overwrite_filter=EqualTo("category", "beta"))
        live = {i: r for i, r in live.items() if r["category"] != "beta"}
        live.update({r["id"]: r for r in beta})
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), [live[i] for i in sorted(live)], "rows after overwrite")

    with s.step("rename_column"):
        with table.update_schema() as upd:
            upd.rename_column("value", "amount")
        table = catalog.load_table(ident)
        got = [(f.field_id, f.name) for f in table.schema().fields]
        s.equal(got, [(1, "id"), (2, "ts"), (3, "category"), (4, "amount")], "schema (field id, name) after the rename")
        live = {i: renamed(r) for i, r in live.items()}
        s.rows_equal(sorted_rows(table.scan().to_arrow()), [live[i] for i in sorted(live)], "rows under the new name")

    with s.step("expire snapshots no ref keeps"):
        current = table.current_snapshot().snapshot_id
        before = {x.snapshot_id for x in table.snapshots()}
        s.check(len(before) > 2, f"only {len(before)} snapshots before the expiry")
        table.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).commit()
        meta = zombi.rest_table(ns, "ops")["metadata"]
        s.equal({x["snapshot-id"] for x in meta["snapshots"]}, {first_id, current}, "snapshots left in the catalog")
        table = catalog.load_table(ident)
        s.rows_equal(sorted_rows(table.scan().to_arrow()), [live[i] for i in sorted(live)], "rows after the expiry")
        tagged = table.scan(snapshot_id=table.snapshot_by_name("first").snapshot_id).to_arrow()
        s.rows_equal(sorted_rows(tagged), [rows[i] for i in sorted(rows)], "rows of the tagged first snapshot")
