"""Spark CREATE TABLE AS SELECT and REPLACE TABLE AS SELECT into partitioned
tables, once per server shape.

Spark runs CTAS, RTAS and CREATE OR REPLACE on a new table as a create
transaction: a staged create (POST .../tables with "stage-create": true,
which the catalog answers without storing anything), the data files written
against the staged metadata (schema 0, spec 0), then one commit with the
requirement `assert-create` whose updates carry everything: assign-uuid,
upgrade-format-version, add-schema, set-current-schema -1, add-spec,
set-default-spec -1, add-sort-order, set-default-sort-order -1,
set-location, set-properties, add-snapshot, set-snapshot-ref main.
REPLACE (and CREATE OR REPLACE on an existing table) is a plain commit
instead: assert-table-uuid and assert-last-assigned-partition-id, then
set-current-schema, remove-snapshot-ref main, add-spec, set-default-spec -1,
set-properties, add-snapshot and set-snapshot-ref main.

The catalog must build the created table from those updates alone, so that
the snapshot's manifests (written with spec 0 and schema 0 of the staged
table) match the table's specs and schemas: every data file in the table's
default spec with real partition values. Each check reads what the catalog
made of it: Spark's `_spec_id` and `_partition` metadata columns per row,
the `.files` and `.partitions` metadata tables, and a scan that prunes on
a partition transform.
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass
from typing import Callable

from pyiceberg.transforms import BucketTransform
from pyiceberg.types import LongType

from conftest import Zombi
from spark_rows import collect, day_of, gen_sql, model
from story import Story
from test_spark import scan_metrics, snapshots_of

ENGINE = "spark"

# Iceberg's bucket transform as PyIceberg computes it (murmur3 of the long,
# modulo 4): an implementation independent of the one that wrote the files.
_bucket4 = BucketTransform(4).transform(LongType())

READ_COLS = "id, unix_micros(ts), category, value"
READ_COLS_NOTE = READ_COLS + ", note"


@dataclass(frozen=True)
class Layout:
    """A partitioning and how to check it: the spec fields the catalog
    must hold as (partition field name, source column, transform), the
    partition values of a model row in the same order, and a WHERE clause
    on a partition transform that selects the partitions prune() accepts."""

    fields: list[tuple[str, str, str]]
    key: Callable[[tuple], tuple]
    prune_sql: str
    prune: Callable[[tuple], bool]


BUCKET_CATEGORY = Layout(
    fields=[("id_bucket", "id", "bucket[4]"), ("category", "category", "identity")],
    key=lambda r: (_bucket4(r[0]), r[2]),
    # A system function is pushed down as a predicate on the bucket
    # transform: only partition data can answer it, column bounds cannot.
    prune_sql="zombi.system.bucket(4, id) = 2",
    prune=lambda k: k[0] == 2,
)
DAYS = Layout(
    fields=[("ts_day", "ts", "day")],
    key=lambda r: (day_of(r[1]),),
    prune_sql="zombi.system.days(ts) = DATE '2024-03-02'",
    prune=lambda k: k[0] == dt.date(2024, 3, 2),
)
IDENTITY = Layout(
    fields=[("category", "category", "identity")],
    key=lambda r: (r[2],),
    prune_sql="category = 'beta'",
    prune=lambda k: k[0] == "beta",
)
DAYS_CATEGORY = Layout(
    fields=[("ts_day", "ts", "day"), ("category", "category", "identity")],
    key=lambda r: (day_of(r[1]), r[2]),
    prune_sql="zombi.system.days(ts) = DATE '2024-03-02' AND category = 'alpha'",
    prune=lambda k: k == (dt.date(2024, 3, 2), "alpha"),
)
BUCKET = Layout(
    fields=[("id_bucket", "id", "bucket[4]")],
    key=lambda r: (_bucket4(r[0]),),
    prune_sql="zombi.system.bucket(4, id) = 1",
    prune=lambda k: k[0] == 1,
)


def check_layout(s: Story, spark, zombi: Zombi, ns: str, name: str, layout: Layout, live: dict, cols: str = READ_COLS):
    """Checks table ns.name against the model rows live (id -> row) and its
    partitioning against layout, through the catalog and through Spark."""
    t = f"zombi.{ns}.{name}"
    meta = zombi.rest_table(ns, name)
    s.check(meta is not None, f"the catalog has no table {ns}.{name}")
    md = meta["metadata"]
    schema = next(x for x in md["schemas"] if x["schema-id"] == md["current-schema-id"])
    column = {f["id"]: f["name"] for f in schema["fields"]}
    spec_id = md["default-spec-id"]
    spec = next(p for p in md["partition-specs"] if p["spec-id"] == spec_id)
    got = [(f["name"], column.get(f["source-id"]), f["transform"]) for f in spec["fields"]]
    s.equal(got, layout.fields, f"default spec {spec_id} (field, source column, transform) in the catalog")

    names = [f for f, _, _ in layout.fields]
    want_parts = collections.Counter(layout.key(r) for r in live.values())

    # Per row: the spec and partition Spark read it under.
    part_cols = ", ".join(f"_partition.{f}" for f in names)
    per_row = collect(spark, f"SELECT id, _spec_id, {part_cols} FROM {t}")
    s.equal(len(per_row), len(live), "rows read with _spec_id and _partition")
    specs = collections.Counter(r[1] for r in per_row)
    s.equal(dict(specs), {spec_id: len(live)}, f"_spec_id of the rows (the table's default spec is {spec_id})")
    wrong = [(r[0], r[2:], layout.key(live[r[0]])) for r in per_row if tuple(r[2:]) != layout.key(live[r[0]])]
    s.check(
        not wrong,
        f"{len(wrong)} of {len(per_row)} rows are in the wrong partition; first (id, _partition, want): {wrong[:3]}",
    )

    # The data files as the metadata tables list them.
    part_fields = ", ".join(f"partition.{f}" for f in names)
    files = collect(spark, f"SELECT spec_id, record_count, {part_fields} FROM {t}.files")
    s.equal(
        dict(collections.Counter(f[0] for f in files)),
        {spec_id: len(files)},
        f"spec_id of the {len(files)} data files in {name}.files",
    )
    by_part = collections.Counter()
    for f in files:
        by_part[tuple(f[2:])] += f[1]
    s.equal(dict(by_part), dict(want_parts), f"records per partition in {name}.files")
    parts = collect(spark, f"SELECT spec_id, record_count, file_count, {part_fields} FROM {t}.partitions")
    s.equal(
        {tuple(p[3:]): (p[0], p[1]) for p in parts},
        {k: (spec_id, n) for k, n in want_parts.items()},
        f"{name}.partitions: partition -> (spec_id, record_count)",
    )
    s.equal(sum(p[2] for p in parts), len(files), f"file_count summed over {name}.partitions")

    # A filter on a partition transform plans exactly the files of the
    # matching partitions.
    df = spark.sql(f"SELECT id FROM {t} WHERE {layout.prune_sql}")
    got_ids = sorted(r[0] for r in df.collect())
    want_ids = sorted(i for i, r in live.items() if layout.prune(layout.key(r)))
    s.equal(got_ids, want_ids, f"ids WHERE {layout.prune_sql}")
    in_part = sum(1 for f in files if layout.prune(tuple(f[2:])))
    s.check(0 < in_part < len(files), f"{in_part} of {len(files)} data files match WHERE {layout.prune_sql}")
    m = scan_metrics(df)
    s.equal(m.get("resultDataFiles"), in_part, f"data files planned for WHERE {layout.prune_sql} (scan metrics {m})")
    # Files of a manifest skipped whole (by its partition summary) are not
    # counted as skipped files.
    if m.get("skippedDataManifests") == 0:
        s.equal(
            m.get("skippedDataFiles"),
            len(files) - in_part,
            f"data files skipped for WHERE {layout.prune_sql} (scan metrics {m})",
        )

    # The rows themselves.
    s.equal(collect(spark, f"SELECT count(*) FROM {t}")[0][0], len(live), "count(*)")
    got_rows = collect(spark, f"SELECT {cols} FROM {t} ORDER BY id")
    s.rows_equal(got_rows, [live[i] for i in sorted(live)], f"rows of {name}")

    # The current snapshot refers to the table's current schema (the one
    # its files were written with), and reads back in it.
    cur = next(x for x in md["snapshots"] if x["snapshot-id"] == md["current-snapshot-id"])
    s.equal(cur.get("schema-id"), md["current-schema-id"], "schema-id of the current snapshot vs current-schema-id")
    df = spark.sql(f"SELECT * FROM {t} VERSION AS OF {cur['snapshot-id']}")
    s.equal(df.columns, [f["name"] for f in schema["fields"]], "columns of the current snapshot read VERSION AS OF")
    return meta


# ---------------------------------------------------------------------------


def test_spark_ctas_partitioned(zombi: Zombi, spark, ns: str):
    """CTAS with bucket + identity, with days, and with identity alone:
    the files carry the table's default spec and the partition values of
    their rows."""
    s = Story(ENGINE, zombi.shape)
    live = model(0, 120)

    with s.step("CREATE NAMESPACE"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")

    cases = [
        ("by_bucket", "bucket(4, id), category", BUCKET_CATEGORY),
        ("by_day", "days(ts)", DAYS),
        ("by_category", "category", IDENTITY),
    ]
    for name, clause, layout in cases:
        with s.step(f"CREATE TABLE {name} PARTITIONED BY ({clause}) AS SELECT"):
            spark.sql(f"CREATE TABLE zombi.{ns}.{name} USING iceberg PARTITIONED BY ({clause}) AS {gen_sql(0, 120)}")
        with s.step(f"{name}: partitions, files, pruning and rows"):
            meta = check_layout(s, spark, zombi, ns, name, layout, live)
            md = meta["metadata"]
            s.equal(md["format-version"], 2, "format version in the catalog")
            s.equal(len(snapshots_of(meta)), 1, "snapshots after CTAS")

    with s.step("INSERT INTO a CTAS table lands in the same spec"):
        spark.sql(f"INSERT INTO zombi.{ns}.by_bucket {gen_sql(500, 30)}")
        live.update(model(500, 30))
        check_layout(s, spark, zombi, ns, "by_bucket", BUCKET_CATEGORY, live)


def test_spark_ctas_format_v1(zombi: Zombi, spark, ns: str):
    """CTAS of a format-version 1 table: the create transaction's
    upgrade-format-version says 1, which is where a new table starts (not a
    downgrade of anything)."""
    s = Story(ENGINE, zombi.shape)
    live = model(0, 90)

    with s.step("CREATE TABLE ... TBLPROPERTIES ('format-version' = '1') AS SELECT"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE zombi.{ns}.v1 USING iceberg PARTITIONED BY (days(ts), category) "
            f"TBLPROPERTIES ('format-version' = '1') AS {gen_sql(0, 90)}"
        )

    with s.step("format version 1, partitions, files, pruning and rows"):
        meta = check_layout(s, spark, zombi, ns, "v1", DAYS_CATEGORY, live)
        s.equal(meta["metadata"]["format-version"], 1, "format version in the catalog")

    with s.step("INSERT INTO the v1 table"):
        spark.sql(f"INSERT INTO zombi.{ns}.v1 {gen_sql(200, 30)}")
        live.update(model(200, 30))
        meta = check_layout(s, spark, zombi, ns, "v1", DAYS_CATEGORY, live)
        s.equal(meta["metadata"]["format-version"], 1, "format version in the catalog after INSERT")


def test_spark_replace_table_as_select(zombi: Zombi, spark, ns: str):
    """CREATE OR REPLACE on a new table (a create transaction), REPLACE
    TABLE ... AS SELECT on it with another partitioning and another schema,
    then CREATE OR REPLACE on the existing table. Iceberg's Spark docs:
    atomic table replacement creates a new snapshot with the results of
    the SELECT and keeps the table's history; the table stays the same
    table (its UUID), its earlier snapshots stay readable."""
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"

    with s.step("CREATE OR REPLACE TABLE (new) PARTITIONED BY (days(ts), category) AS SELECT"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(f"CREATE OR REPLACE TABLE {t} USING iceberg PARTITIONED BY (days(ts), category) AS {gen_sql(0, 90)}")
        first = model(0, 90)
        meta = check_layout(s, spark, zombi, ns, "events", DAYS_CATEGORY, first)
        uuid = meta["metadata"]["table-uuid"]
        snaps = snapshots_of(meta)
        s.equal(len(snaps), 1, "snapshots after CREATE OR REPLACE of a new table")
        first_id = snaps[0]["snapshot-id"]

    with s.step("REPLACE TABLE PARTITIONED BY (bucket(4, id)) AS SELECT with a new column"):
        spark.sql(f"REPLACE TABLE {t} USING iceberg PARTITIONED BY (bucket(4, id)) AS {gen_sql(1000, 60, note=True)}")
        second = model(1000, 60, note=True)
        meta = check_layout(s, spark, zombi, ns, "events", BUCKET, second, cols=READ_COLS_NOTE)
        md = meta["metadata"]
        s.equal(md["table-uuid"], uuid, "table-uuid after REPLACE (the same table)")
        snaps = snapshots_of(meta)
        s.equal([x["snapshot-id"] for x in snaps][:1], [first_id], "the first snapshot is kept")
        s.equal(len(snaps), 2, "snapshots after REPLACE")
        second_id = md["current-snapshot-id"]
        s.equal(snaps[1]["snapshot-id"], second_id, "the REPLACE snapshot is the current one")
        s.equal(snaps[1].get("parent-snapshot-id"), None, "parent of the REPLACE snapshot (a new line of history)")
        old_specs = [p["spec-id"] for p in md["partition-specs"]]
        s.check(len(old_specs) >= 2, f"partition specs after REPLACE: {old_specs} (the first spec is kept)")

    with s.step("history and time travel after REPLACE"):
        hist = collect(spark, f"SELECT snapshot_id, parent_id, is_current_ancestor FROM {t}.history ORDER BY made_current_at")
        s.equal(hist, [(first_id, None, False), (second_id, None, True)], f"{t}.history")
        got = collect(spark, f"SELECT {READ_COLS} FROM {t} VERSION AS OF {first_id} ORDER BY id")
        s.rows_equal(got, [first[i] for i in sorted(first)], "rows of the first snapshot (VERSION AS OF)")
        s.equal(
            spark.sql(f"SELECT * FROM {t} VERSION AS OF {first_id}").columns,
            ["id", "ts", "category", "value"],
            "columns of the first snapshot (its own schema)",
        )

    with s.step("CREATE OR REPLACE TABLE (existing) PARTITIONED BY (category) AS SELECT"):
        spark.sql(f"CREATE OR REPLACE TABLE {t} USING iceberg PARTITIONED BY (category) AS {gen_sql(2000, 45)}")
        third = model(2000, 45)
        meta = check_layout(s, spark, zombi, ns, "events", IDENTITY, third)
        md = meta["metadata"]
        s.equal(md["table-uuid"], uuid, "table-uuid after CREATE OR REPLACE (the same table)")
        snaps = snapshots_of(meta)
        s.equal([x["snapshot-id"] for x in snaps][:2], [first_id, second_id], "earlier snapshots are kept")
        s.equal(len(snaps), 3, "snapshots after CREATE OR REPLACE")
        hist = collect(spark, f"SELECT snapshot_id, is_current_ancestor FROM {t}.history ORDER BY made_current_at")
        s.equal(
            hist,
            [(first_id, False), (second_id, False), (md["current-snapshot-id"], True)],
            f"{t}.history after CREATE OR REPLACE",
        )
        got = collect(spark, f"SELECT {READ_COLS_NOTE} FROM {t} VERSION AS OF {second_id} ORDER BY id")
        s.rows_equal(got, [second[i] for i in sorted(second)], "rows of the REPLACE snapshot (VERSION AS OF)")
