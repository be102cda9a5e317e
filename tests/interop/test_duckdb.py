"""DuckDB (iceberg extension from PyPI) reads, through zombi's REST
catalog, tables that other engines wrote; once per server shape.

DuckDB attaches the catalog with the endpoint only (engines.duckdb_connect);
for the postgres-s3 shape it reads S3 with the endpoint, region, path style
and keys from the catalog's loadTable config. Every assertion names the
engine, the shape and the step.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestampType

from conftest import Zombi
from spark_rows import CATEGORIES, CREATE_COLUMNS, EPOCH_US, day_of, gen_sql, model
from story import Story

ENGINE = "duckdb"


def fetch(duck, query: str) -> list[tuple]:
    return [tuple(r) for r in duck.execute(query).fetchall()]


def test_duckdb_reads_spark_table(zombi: Zombi, spark, duck, catalog, ns: str):
    """Spark writes a partitioned v2 table through schema evolution,
    merge-on-read deletes and MERGE; DuckDB reads every state of it, and
    PyIceberg agrees."""
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"
    read_cols = "id, epoch_us(ts), category, amount, note"

    with s.step("Spark writes the table"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE {t} ({CREATE_COLUMNS}) USING iceberg PARTITIONED BY (days(ts), category) "
            "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read')"
        )
        spark.sql(f"INSERT INTO {t} {gen_sql(0, 200)}")
        first_id = zombi.rest_table(ns, "events")["metadata"]["current-snapshot-id"]
        spark.sql(f"ALTER TABLE {t} ADD COLUMN note STRING")
        spark.sql(f"ALTER TABLE {t} RENAME COLUMN value TO amount")
        spark.sql(f"INSERT INTO {t} {gen_sql(200, 100, note=True)}")
        spark.sql(f"DELETE FROM {t} WHERE category = 'beta' AND id % 4 = 1")
        spark.sql(
            f"MERGE INTO {t} AS t USING (SELECT id, 'merged' AS note FROM range(0, 300, 7)) AS s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET t.note = s.note"
        )
        live = {i: r + (None,) for i, r in model(0, 200).items()}
        live.update(model(200, 100, note=True))
        live = {i: r for i, r in live.items() if not (r[2] == "beta" and i % 4 == 1)}
        for i in range(0, 300, 7):
            if i in live:
                live[i] = live[i][:4] + ("merged",)
        meta = zombi.rest_table(ns, "events")
        snapshot_ids = {x["snapshot-id"] for x in meta["metadata"]["snapshots"]}

    with s.step("list tables"):
        got = fetch(duck, f"SELECT name FROM (SHOW ALL TABLES) WHERE database = 'zombi' AND schema = '{ns}'")
        s.equal(got, [("events",)], f"tables of schema zombi.{ns}")

    with s.step("columns after ADD and RENAME"):
        got = [r[0] for r in fetch(duck, f"DESCRIBE {t}")]
        s.equal(got, ["id", "ts", "category", "amount", "note"], "columns DuckDB sees")

    with s.step("read the current snapshot"):
        got = fetch(duck, f"SELECT {read_cols} FROM {t} ORDER BY id")
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows (after DELETE position deletes and MERGE)")
        spark_rows = [tuple(r) for r in spark.sql(f"SELECT id, unix_micros(ts), category, amount, note FROM {t} ORDER BY id").collect()]
        s.rows_equal(got, spark_rows, "DuckDB's rows vs Spark's rows")

    with s.step("partition filter"):
        day, cat = dt.date(2024, 3, 3), "gamma"
        got = [
            r[0]
            for r in fetch(
                duck,
                f"SELECT id FROM {t} WHERE category = '{cat}' "
                f"AND ts >= TIMESTAMPTZ '{day} 00:00:00+00' AND ts < TIMESTAMPTZ '{day + dt.timedelta(days=1)} 00:00:00+00' "
                "ORDER BY id",
            )
        ]
        want = sorted(i for i, r in live.items() if r[2] == cat and day_of(r[1]) == day)
        s.check(want, "the filter matches no row of the model")
        s.equal(got, want, f"ids in partition ({day}, {cat})")

    with s.step("snapshots"):
        got = {r[0] for r in fetch(duck, f"SELECT snapshot_id FROM iceberg_snapshots({t})")}
        s.equal(got, snapshot_ids, "snapshot ids DuckDB lists vs the catalog's")

    with s.step("time travel to the first snapshot"):
        got = fetch(duck, f"SELECT id, epoch_us(ts), category FROM {t} AT (VERSION => {first_id}) ORDER BY id")
        first = model(0, 200)
        s.rows_equal(got, [first[i][:3] for i in sorted(first)], f"rows AT (VERSION => {first_id})")

    with s.step("Spark appends again; the same DuckDB connection sees it"):
        spark.sql(f"INSERT INTO {t} SELECT *, 'late' AS note FROM ({gen_sql(500, 10)})")
        live.update({i: r + ("late",) for i, r in model(500, 10).items()})
        got = fetch(duck, f"SELECT {read_cols} FROM {t} ORDER BY id")
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after Spark's next INSERT")

    with s.step("PyIceberg reads the same table"):
        tbl = catalog.load_table((ns, "events")).scan().to_arrow()
        ts = tbl.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        rows = sorted(
            zip(tbl.column("id").to_pylist(), ts, *(tbl.column(c).to_pylist() for c in ("category", "amount", "note")))
        )
        s.rows_equal(rows, [live[i] for i in sorted(live)], "PyIceberg's rows vs the model")


def test_duckdb_reads_pyiceberg_table(zombi: Zombi, duck, catalog, ns: str):
    """PyIceberg writes a day/identity-partitioned table and deletes a
    partition; DuckDB reads it."""
    s = Story(ENGINE, zombi.shape)
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "ts", TimestampType(), required=False),
        NestedField(3, "category", StringType(), required=False),
        NestedField(4, "value", DoubleType(), required=False),
    )
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=DayTransform(), name="ts_day"),
        PartitionField(source_id=3, field_id=1001, transform=IdentityTransform(), name="category"),
    )
    rows = model(0, 120)

    with s.step("PyIceberg writes the table"):
        catalog.create_namespace(ns)
        table = catalog.create_table((ns, "events"), schema, partition_spec=spec)
        table.append(
            pa.Table.from_pylist(
                [
                    {
                        "id": r[0],
                        "ts": dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=r[1]),
                        "category": r[2],
                        "value": r[3],
                    }
                    for r in rows.values()
                ],
                schema=pa.schema(
                    [
                        pa.field("id", pa.int64()),
                        pa.field("ts", pa.timestamp("us")),
                        pa.field("category", pa.string()),
                        pa.field("value", pa.float64()),
                    ]
                ),
            )
        )
        table.delete(delete_filter=EqualTo("category", CATEGORIES[0]))
        live = {i: r for i, r in rows.items() if r[2] != CATEGORIES[0]}

    with s.step("read"):
        got = fetch(duck, f"SELECT id, epoch_us(ts), category, value FROM zombi.{ns}.events ORDER BY id")
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after PyIceberg's append and partition delete")
        got = fetch(duck, f"SELECT count(*) FROM zombi.{ns}.events WHERE ts >= TIMESTAMP '2024-03-02 00:00:00'")
        want = sum(1 for r in live.values() if r[1] >= EPOCH_US + 24 * 3600 * 1_000_000)
        s.equal(got, [(want,)], "rows from 2024-03-02 on")
