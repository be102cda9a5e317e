"""Trino (476, Iceberg connector) against zombi's REST catalog, once per
server shape.

Catalog `zombi` is the Iceberg connector with type=rest and the URI, plus
the file system Trino must be told to enable (engines.trino_catalog_properties).
For the postgres-s3 shape Trino is also given the S3 endpoint, region,
path style and keys: Trino 476 does not take them from the catalog's
loadTable config. Every assertion names the engine, the shape and the step.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from conftest import Zombi
from spark_rows import CREATE_COLUMNS, EPOCH_US, STEP_US, day_of, gen_sql, model
from story import Story

ENGINE = "trino"

# ts as ISO 8601 text with all six fraction digits (Trino has no exact
# microseconds-since-epoch function); rows() turns it into microseconds.
MICROS = "to_iso8601(ts)"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def trino_gen(start: int, n: int) -> str:
    """Trino's SELECT of the rows spark_rows.model(start, n) describes."""
    return (
        f"SELECT id, CAST(from_unixtime_nanos(({EPOCH_US} + id * {STEP_US} + id) * 1000) AS timestamp(6) with time zone) AS ts, "
        "element_at(ARRAY['alpha', 'beta', 'gamma'], id % 3 + 1) AS category, "
        "IF(id % 50 = 7, NULL, CAST(id AS double) * 0.25) AS value "
        f"FROM UNNEST(sequence({start}, {start + n - 1})) AS r(id)"
    )


def rows(trino, sql: str, micros_at: int | None = None) -> list[tuple]:
    """The rows of sql; column micros_at (a MICROS expression) is turned
    into microseconds since the epoch."""
    out = []
    for r in trino.query(sql)[1]:
        if micros_at is not None:
            r = [*r[:micros_at], iso_micros(r[micros_at]), *r[micros_at + 1 :]]
        out.append(tuple(r))
    return out


def iso_micros(text: str | None) -> int | None:
    if text is None:
        return None
    d = dt.datetime.fromisoformat(text) - EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def snapshots_of(meta: dict) -> list[dict]:
    return sorted(meta["metadata"].get("snapshots", []), key=lambda x: x["sequence-number"])


def test_trino_table_lifecycle(zombi: Zombi, trino, duck, catalog, ns: str):
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"
    read_cols = f"id, {MICROS}, category, amount, note"

    with s.step("CREATE SCHEMA"):
        trino.query(f"CREATE SCHEMA zombi.{ns}")
        names = [r[0] for r in rows(trino, "SHOW SCHEMAS FROM zombi")]
        s.check(ns in names, f"SHOW SCHEMAS lacks {ns!r}: {names}")

    with s.step("CREATE TABLE partitioned by day(ts), category"):
        trino.query(
            f"CREATE TABLE {t} (id bigint, ts timestamp(6) with time zone, category varchar, value double) "
            "WITH (format_version = 2, partitioning = ARRAY['day(ts)', 'category'])"
        )
        meta = zombi.rest_table(ns, "events")
        s.check(meta is not None, "the catalog has no table after CREATE TABLE")
        md = meta["metadata"]
        s.equal(md["format-version"], 2, "format version in the catalog")
        loc = md["location"]
        s.check(
            loc.startswith(zombi.warehouse.rstrip("/") + "/"),
            f"table location {loc!r} is not under the warehouse {zombi.warehouse!r}",
        )
        spec = next(p for p in md["partition-specs"] if p["spec-id"] == md["default-spec-id"])
        got = [(f["source-id"], f["transform"]) for f in spec["fields"]]
        s.equal(got, [(2, "day"), (3, "identity")], "partition fields (source id, transform) in the catalog")

    with s.step("INSERT"):
        trino.query(f"INSERT INTO {t} {trino_gen(0, 300)}")
        live = model(0, 300)
        got = rows(trino, f"SELECT id, {MICROS}, category, value FROM {t} ORDER BY id", micros_at=1)
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows read back after INSERT")
        first_id = zombi.rest_table(ns, "events")["metadata"]["current-snapshot-id"]

    with s.step("SELECT with a partition filter"):
        day, cat = dt.date(2024, 3, 2), "alpha"
        got = [
            r[0]
            for r in rows(
                trino,
                f"SELECT id FROM {t} WHERE category = '{cat}' AND ts >= TIMESTAMP '{day} 00:00:00 UTC' "
                f"AND ts < TIMESTAMP '{day + dt.timedelta(days=1)} 00:00:00 UTC' ORDER BY id",
            )
        ]
        want = sorted(i for i, r in live.items() if r[2] == cat and day_of(r[1]) == day)
        s.equal(got, want, f"ids in partition ({day}, {cat})")
        parts = rows(trino, f'SELECT count(*) FROM zombi.{ns}."events$partitions"')[0][0]
        want_parts = len({(day_of(r[1]), r[2]) for r in live.values()})
        s.equal(parts, want_parts, "partitions Trino lists ($partitions)")

    with s.step("ALTER TABLE ADD COLUMN, RENAME COLUMN"):
        trino.query(f"ALTER TABLE {t} ADD COLUMN note varchar")
        trino.query(f"ALTER TABLE {t} RENAME COLUMN value TO amount")
        md = zombi.rest_table(ns, "events")["metadata"]
        schema = next(x for x in md["schemas"] if x["schema-id"] == md["current-schema-id"])
        got = [(f["id"], f["name"]) for f in schema["fields"]]
        s.equal(
            got,
            [(1, "id"), (2, "ts"), (3, "category"), (4, "amount"), (5, "note")],
            "schema (field id, name) in the catalog after ADD and RENAME",
        )
        live = {i: r + (None,) for i, r in live.items()}

    with s.step("DELETE (format v2 position deletes)"):
        trino.query(f"DELETE FROM {t} WHERE category = 'gamma' AND id % 2 = 0")
        live = {i: r for i, r in live.items() if not (r[2] == "gamma" and i % 2 == 0)}
        cur = snapshots_of(zombi.rest_table(ns, "events"))[-1]
        s.check(
            int(cur["summary"].get("added-position-delete-files", "0")) > 0,
            f"the DELETE snapshot added no position delete files: summary {cur['summary']}",
        )
        got = rows(trino, f"SELECT {read_cols} FROM {t} ORDER BY id", micros_at=1)
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after DELETE")

    with s.step("UPDATE and MERGE"):
        trino.query(f"UPDATE {t} SET note = 'updated' WHERE id < 5")
        for i in range(5):
            if i in live:
                live[i] = live[i][:4] + ("updated",)
        trino.query(
            f"MERGE INTO {t} AS t USING (SELECT id, CAST(-id AS double) AS amount FROM UNNEST(ARRAY[10, 11, 12, 4000]) AS s(id)) AS s "
            "ON t.id = s.id WHEN MATCHED THEN UPDATE SET amount = s.amount "
            "WHEN NOT MATCHED THEN INSERT (id, category, amount, note) VALUES (s.id, 'delta', s.amount, 'merged')"
        )
        for i in (10, 11, 12):
            if i in live:
                live[i] = live[i][:3] + (float(-i),) + live[i][4:]
        live[4000] = (4000, None, "delta", -4000.0, "merged")
        got = rows(trino, f"SELECT {read_cols} FROM {t} ORDER BY id", micros_at=1)
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after UPDATE and MERGE")

    with s.step("time travel: FOR VERSION AS OF the first snapshot"):
        got = rows(trino, f"SELECT id, {MICROS}, category FROM {t} FOR VERSION AS OF {first_id} ORDER BY id", micros_at=1)
        first = model(0, 300)
        s.rows_equal(got, [first[i][:3] for i in sorted(first)], "rows of the first snapshot")

    with s.step("ALTER TABLE EXECUTE optimize"):
        files_before = rows(trino, f'SELECT count(*) FROM zombi.{ns}."events$files" WHERE content = 0')[0][0]
        trino.query(f"ALTER TABLE {t} EXECUTE optimize")
        files_after = rows(trino, f'SELECT count(*) FROM zombi.{ns}."events$files" WHERE content = 0')[0][0]
        s.check(files_after < files_before, f"data files {files_before} -> {files_after} after optimize")
        cur = snapshots_of(zombi.rest_table(ns, "events"))[-1]
        s.equal(cur["summary"]["operation"], "replace", "operation of the optimize snapshot")
        got = rows(trino, f"SELECT {read_cols} FROM {t} ORDER BY id", micros_at=1)
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after optimize")

    with s.step("DuckDB and PyIceberg read Trino's table"):
        got = [tuple(r) for r in duck.execute(f"SELECT id, epoch_us(ts), category, amount, note FROM {t} ORDER BY id").fetchall()]
        s.rows_equal(got, [live[i] for i in sorted(live)], "DuckDB's rows vs the model")
        tbl = catalog.load_table((ns, "events")).scan().to_arrow()
        ts = tbl.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        got = sorted(
            zip(tbl.column("id").to_pylist(), ts, *(tbl.column(c).to_pylist() for c in ("category", "amount", "note"))),
            key=lambda r: r[0],
        )
        s.rows_equal(got, [live[i] for i in sorted(live)], "PyIceberg's rows vs the model")

    with s.step("DROP TABLE"):
        s.check(zombi.files_under(loc), f"no files under {loc} before the drop")
        trino.query(f"DROP TABLE {t}")
        s.equal(zombi.rest_table(ns, "events"), None, "the catalog's loadTable after DROP TABLE")
        s.equal(zombi.files_under(loc), [], f"files left under {loc} after DROP TABLE (Trino asks for a purge)")
        s.equal(rows(trino, f"SHOW TABLES FROM zombi.{ns}"), [], "SHOW TABLES after the drop")

    with s.step("DROP SCHEMA"):
        trino.query(f"DROP SCHEMA zombi.{ns}")
        names = [r[0] for r in rows(trino, "SHOW SCHEMAS FROM zombi")]
        s.check(ns not in names, f"{ns!r} still listed after DROP SCHEMA")


def test_trino_reads_spark_table(zombi: Zombi, trino, spark, ns: str):
    """Spark writes a table through schema evolution and merge-on-read
    deletes; Trino reads it."""
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"

    with s.step("Spark writes the table"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE {t} ({CREATE_COLUMNS}) USING iceberg PARTITIONED BY (days(ts), category) "
            "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read')"
        )
        spark.sql(f"INSERT INTO {t} {gen_sql(0, 150)}")
        spark.sql(f"ALTER TABLE {t} RENAME COLUMN value TO amount")
        spark.sql(f"DELETE FROM {t} WHERE category = 'beta' AND id % 3 = 1")
        live = {i: r for i, r in model(0, 150).items() if not (r[2] == "beta" and i % 3 == 1)}

    with s.step("Trino reads it"):
        got = rows(trino, f"SELECT id, {MICROS}, category, amount FROM {t} ORDER BY id", micros_at=1)
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows Trino reads from the Spark table")
