"""Server-side scan planning with real engines, once per server shape.

Every read is done twice, by two clients of the same catalog: one that
plans from the manifests as engines always do, one configured with
scan-planning-mode=server, which asks zombi (/plan, then /tasks for each
plan task; the fixture's --plan-page-files cuts every plan of more than one
manifest into pages). Both must return the model's rows, and zombi's
counter of plans must show that the second read, and only it, was planned
on the server. DuckDB and Trino cannot plan on the server: they read a
table whose zombi.read.planning says server from its manifests.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.transforms import BucketTransform
from pyiceberg.types import StringType

import engines
import test_pyiceberg as pyi
from conftest import Zombi
from spark_rows import CREATE_COLUMNS, EPOCH_US, STEP_US, collect, day_of, gen_sql, model
from story import Story

PLANS = "zombi_planning_plans_total"
DATA_FILES = 'zombi_planning_files_total{content="data"}'
PAGES = 'zombi_planning_pages_total{outcome="ok"}'


class Twice:
    """Runs each read with the client-planned and the server-planned
    client and checks that both agree, with zombi's counters."""

    def __init__(self, s: Story, zombi: Zombi, client_read, server_read):
        self.s, self.zombi = s, zombi
        self.client_read, self.server_read = client_read, server_read
        self.pages = 0.0

    def read(self, query, what: str):
        z = self.zombi
        before = z.metric(PLANS)
        local = self.client_read(query)
        self.s.equal(z.metric(PLANS) - before, 0, f"plans made on the server for the client-planned read of {what}")
        before, pages = z.metric(PLANS), z.metric(PAGES)
        remote = self.server_read(query)
        self.s.check(z.metric(PLANS) > before, f"the server-planned read of {what} made no plan on the server")
        self.pages += z.metric(PAGES) - pages
        self.s.rows_equal(remote, local, f"{what}: server-planned rows vs client-planned rows")
        return remote


def spark_server_session(spark_engine, zombi: Zombi):
    """A SparkSession whose catalog plans on the server: the client side of
    scan-planning-mode, which loadTable's config overrides when it says."""
    s = engines.spark_session(spark_engine, zombi.url)
    s.conf.set("spark.sql.catalog.zombi.scan-planning-mode", "server")
    return s


def test_spark_server_planning(zombi: Zombi, spark, spark_engine, ns: str):
    """Spark's scenarios planned on the server and locally: partition
    pruning, schema evolution, DELETE, UPDATE and MERGE with position
    deletes (v2) and deletion vectors (v3), time travel by version and
    timestamp, a LIMIT, rewrite_data_files; PyIceberg, planning on the
    server too, reads Spark's deletes."""
    s = Story("spark", zombi.shape)
    server = spark_server_session(spark_engine, zombi)
    twice = Twice(s, zombi, lambda q: collect(spark, q), lambda q: collect(server, q))
    t = f"zombi.{ns}.events"
    cols = "id, unix_micros(ts), category, amount, note"
    mor = "'write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read', 'write.merge.mode' = 'merge-on-read'"

    with s.step("create and INSERT (v2)"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE {t} ({CREATE_COLUMNS}) USING iceberg PARTITIONED BY (days(ts), category) "
            f"TBLPROPERTIES ('format-version' = '2', {mor})"
        )
        spark.sql(f"INSERT INTO {t} {gen_sql(0, 300)}")
        live = model(0, 300)
        first_id = zombi.rest_table(ns, "events")["metadata"]["current-snapshot-id"]
        got = twice.read(f"SELECT id, unix_micros(ts), category, value FROM {t} ORDER BY id", "the first INSERT")
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after the first INSERT")

    with s.step("a partition filter prunes files on the server"):
        day, cat = dt.date(2024, 3, 2), "alpha"
        q = (
            f"SELECT id FROM {t} WHERE category = '{cat}' "
            f"AND ts >= TIMESTAMP '{day} 00:00:00' AND ts < TIMESTAMP '{day + dt.timedelta(days=1)} 00:00:00' ORDER BY id"
        )
        files = zombi.metric(DATA_FILES)
        got = twice.read(q, f"partition ({day}, {cat})")
        planned = zombi.metric(DATA_FILES) - files
        s.equal([r[0] for r in got], sorted(i for i, r in live.items() if r[2] == cat and day_of(r[1]) == day), "ids in the partition")
        in_part = collect(
            spark, f"SELECT count(*) FROM {t}.files WHERE partition.category = '{cat}' AND partition.ts_day = DATE '{day}'"
        )[0][0]
        total = collect(spark, f"SELECT count(*) FROM {t}.files")[0][0]
        s.check(0 < in_part < total, f"{in_part} of {total} data files in the partition")
        s.equal(planned, in_part, "data files the server planned for the partition")

    with s.step("ALTER TABLE ADD COLUMN, RENAME COLUMN, INSERT"):
        spark.sql(f"ALTER TABLE {t} ADD COLUMN note STRING")
        spark.sql(f"ALTER TABLE {t} RENAME COLUMN value TO amount")
        live = {i: r + (None,) for i, r in live.items()}
        # No snapshot since the ALTERs: the scan pins the last one, whose
        # schema has neither name, and filters by the new ones.
        got = twice.read(f"SELECT {cols} FROM {t} WHERE amount > 10 OR note IS NOT NULL ORDER BY id", "the new column names")
        s.rows_equal(got, [live[i] for i in sorted(live) if (live[i][3] or 0) > 10], "rows by the new names")
        spark.sql(f"INSERT INTO {t} {gen_sql(300, 150, note=True)}")
        live.update(model(300, 150, note=True))
        second_id = zombi.rest_table(ns, "events")["metadata"]["current-snapshot-id"]
        after_second = dict(live)

    with s.step("DELETE, UPDATE, MERGE (position deletes)"):
        server.sql(f"DELETE FROM {t} WHERE category = 'gamma' AND id % 2 = 0")
        live = {i: r for i, r in live.items() if not (r[2] == "gamma" and i % 2 == 0)}
        server.sql(f"UPDATE {t} SET note = 'updated' WHERE id % 10 = 3")
        live = {i: (r[:4] + ("updated",) if i % 10 == 3 else r) for i, r in live.items()}
        server.sql(
            f"MERGE INTO {t} AS t USING (SELECT id, 'merged' AS note FROM range(0, 460, 7)) AS s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET t.note = s.note "
            f"WHEN NOT MATCHED THEN INSERT (id, ts, category, amount, note) VALUES (s.id, timestamp_micros({EPOCH_US} + s.id * {STEP_US} + s.id), 'delta', NULL, s.note)"
        )
        for i in range(0, 460, 7):
            live[i] = live[i][:4] + ("merged",) if i in live else (i, EPOCH_US + i * STEP_US + i, "delta", None, "merged")
        summaries = [x["summary"] for x in zombi.rest_table(ns, "events")["metadata"]["snapshots"]]
        s.check(
            any(int(x.get("added-position-delete-files", "0")) > 0 for x in summaries),
            "no snapshot added position delete files",
        )
        got = twice.read(f"SELECT {cols} FROM {t} ORDER BY id", "the table after DELETE, UPDATE and MERGE")
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after DELETE, UPDATE and MERGE")

    with s.step("PyIceberg, planning on the server, reads Spark's deletes"):
        before = zombi.metric(PLANS)
        cat = zombi.catalog(f"plan-{zombi.shape}", **{"scan-planning-mode": "server"})
        tbl = cat.load_table((ns, "events")).scan().to_arrow()
        s.check(zombi.metric(PLANS) > before, "PyIceberg's read made no plan on the server")
        got = sorted(tbl.select(["id", "note"]).to_pylist(), key=lambda r: r["id"])
        s.equal([(r["id"], r["note"]) for r in got], [(i, live[i][4]) for i in sorted(live)], "PyIceberg's ids and notes")

    with s.step("time travel"):
        q = f"SELECT id, unix_micros(ts), category, value FROM {t} VERSION AS OF {first_id} WHERE value < 20 ORDER BY id"
        got = twice.read(q, f"VERSION AS OF {first_id} by the old column name")
        first = model(0, 300)
        s.rows_equal(got, [first[i] for i in sorted(first) if first[i][3] is not None and first[i][3] < 20], "rows of the first snapshot")
        snaps = sorted(zombi.rest_table(ns, "events")["metadata"]["snapshots"], key=lambda x: x["sequence-number"])
        second = next(x for x in snaps if x["snapshot-id"] == second_id)
        at = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=second["timestamp-ms"])
        got = twice.read(f"SELECT {cols} FROM {t} TIMESTAMP AS OF '{at.isoformat(' ')}' ORDER BY id", f"TIMESTAMP AS OF {at}")
        s.rows_equal(got, [after_second[i] for i in sorted(after_second)], "rows as of the second INSERT")

    with s.step("LIMIT"):
        got = collect(server, f"SELECT id FROM {t} LIMIT 5")
        s.equal(len(got), 5, "rows of a LIMIT 5 planned on the server")

    with s.step("rewrite_data_files planned on the server"):
        res = server.sql(f"CALL zombi.system.rewrite_data_files(table => '{ns}.events', options => map('min-input-files', '2'))").collect()[0]
        s.check(res["rewritten_data_files_count"] > 0, f"rewrite_data_files rewrote nothing: {res.asDict()}")
        got = twice.read(f"SELECT {cols} FROM {t} ORDER BY id", "the table after rewrite_data_files")
        s.rows_equal(got, [live[i] for i in sorted(live)], "rows after rewrite_data_files")

    with s.step("deletion vectors (v3)"):
        t3 = f"zombi.{ns}.dv"
        spark.sql(
            f"CREATE TABLE {t3} ({CREATE_COLUMNS}) USING iceberg PARTITIONED BY (category) "
            f"TBLPROPERTIES ('format-version' = '3', {mor})"
        )
        spark.sql(f"INSERT INTO {t3} {gen_sql(0, 200)}")
        server.sql(f"DELETE FROM {t3} WHERE id % 5 = 0")
        server.sql(f"UPDATE {t3} SET value = -1 WHERE id % 5 = 1")
        dv = model(0, 200)
        dv = {i: (r[:3] + (-1.0,) if i % 5 == 1 else r) for i, r in dv.items() if i % 5 != 0}
        formats = {r[0] for r in collect(spark, f"SELECT file_format FROM {t3}.delete_files")}
        s.equal(formats, {"PUFFIN"}, "formats of the v3 table's delete files")
        got = twice.read(f"SELECT id, unix_micros(ts), category, value FROM {t3} ORDER BY id", "the v3 table")
        s.rows_equal(got, [dv[i] for i in sorted(dv)], "rows of the v3 table after DELETE and UPDATE")

    s.check(twice.pages > 0, "no server-planned read was answered in pages")


def test_pyiceberg_server_planning(zombi: Zombi, catalog, ns: str):
    """PyIceberg's scenarios planned on the server and locally: partition
    pruning, schema and partition evolution, time travel and tags,
    deletes, overwrite, upsert, a renamed column, expired snapshots."""
    s = Story("pyiceberg", zombi.shape)
    server = zombi.catalog(f"plan-{zombi.shape}", **{"scan-planning-mode": "server"})
    ident = (ns, "events")

    def read(cat, args):
        scan = cat.load_table(ident).scan(**args)
        return pyi.sorted_rows(scan.to_arrow())

    twice = Twice(s, zombi, lambda args: read(catalog, args), lambda args: read(server, args))
    rows = pyi.make_rows(0, 300)

    with s.step("create and append twice"):
        catalog.create_namespace(ns)
        table = catalog.create_table(ident, pyi.SCHEMA, partition_spec=pyi.SPEC)
        table.append(pyi.to_arrow(rows[:200]))
        first_id = catalog.load_table(ident).current_snapshot().snapshot_id
        catalog.load_table(ident).append(pyi.to_arrow(rows[200:]))
        s.rows_equal(twice.read({}, "two appends"), rows, "rows of two appends")

    with s.step("partition filter"):
        day, cat = dt.date(2024, 3, 2), "beta"
        start = dt.datetime.combine(day, dt.time())
        expr = And(EqualTo("category", cat), And(GreaterThanOrEqual("ts", start.isoformat()), LessThan("ts", (start + dt.timedelta(days=1)).isoformat())))
        got = twice.read({"row_filter": expr}, f"partition ({day}, {cat})")
        s.rows_equal(got, [r for r in rows if r["category"] == cat and r["ts"].date() == day], "rows of the partition")
        planned = list(server.load_table(ident).scan(row_filter=expr).plan_files())
        local = list(catalog.load_table(ident).scan(row_filter=expr).plan_files())
        s.equal(sorted(x.file.file_path for x in planned), sorted(x.file.file_path for x in local), "files planned on the server vs locally")

    with s.step("add a column, append"):
        with catalog.load_table(ident).update_schema() as upd:
            upd.add_column("note", StringType())
        more = pyi.make_rows(300, 60, note=True)
        catalog.load_table(ident).append(pyi.to_arrow(more, note=True))
        all_rows = [dict(r, note=None) for r in rows] + more
        s.rows_equal(twice.read({}, "after add_column"), all_rows, "rows after add_column")

    with s.step("time travel and a tag"):
        s.rows_equal(twice.read({"snapshot_id": first_id}, "the first snapshot"), rows[:200], "rows of the first snapshot")
        catalog.load_table(ident).manage_snapshots().create_tag(first_id, "first").commit()
        tagged = catalog.load_table(ident).snapshot_by_name("first").snapshot_id
        s.rows_equal(twice.read({"snapshot_id": tagged}, "the tag"), rows[:200], "rows of the tag")

    with s.step("partition evolution"):
        with catalog.load_table(ident).update_spec() as upd:
            upd.add_field("id", BucketTransform(4), "id_bucket")
        extra = pyi.make_rows(400, 40, note=True)
        catalog.load_table(ident).append(pyi.to_arrow(extra, note=True))
        all_rows += extra
        s.rows_equal(twice.read({}, "two partition specs"), all_rows, "rows across two specs")

    with s.step("delete a partition, overwrite with a filter"):
        catalog.load_table(ident).delete(delete_filter=EqualTo("category", "gamma"))
        all_rows = [r for r in all_rows if r["category"] != "gamma"]
        beta = [dict(r, value=0.5) for r in all_rows if r["category"] == "beta" and r["id"] < 30]
        catalog.load_table(ident).overwrite(pyi.to_arrow(beta, note=True), overwrite_filter=EqualTo("category", "beta"))
        all_rows = sorted([r for r in all_rows if r["category"] != "beta"] + beta, key=lambda r: r["id"])
        s.rows_equal(twice.read({}, "after delete and overwrite"), all_rows, "rows after delete and overwrite")

    with s.step("upsert through a server-planned table"):
        changes = [dict(r, value=-1.0) for r in all_rows[:3]] + pyi.make_rows(900, 2, note=True)
        res = server.load_table(ident).upsert(pa.Table.from_pylist(changes, schema=pyi.arrow_schema(True)), join_cols=["id"])
        s.equal((res.rows_updated, res.rows_inserted), (3, 2), "rows updated and inserted by upsert")
        by_id = {r["id"]: r for r in all_rows}
        by_id.update({r["id"]: r for r in changes})
        all_rows = [by_id[i] for i in sorted(by_id)]
        s.rows_equal(twice.read({}, "after upsert"), all_rows, "rows after upsert")

    with s.step("rename a column, expire snapshots"):
        with catalog.load_table(ident).update_schema() as upd:
            upd.rename_column("value", "amount")
        renamed = [{("amount" if k == "value" else k): v for k, v in r.items()} for r in all_rows]
        got = twice.read({"row_filter": GreaterThanOrEqual("amount", 0.0)}, "by the new name")
        s.rows_equal(got, [r for r in renamed if r["amount"] is not None and r["amount"] >= 0], "rows with amount >= 0")
        table = catalog.load_table(ident)
        table.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).commit()
        s.rows_equal(twice.read({}, "after expiring snapshots"), renamed, "rows after the expiry")

    s.check(twice.pages > 0, "no server-planned read was answered in pages")


def test_engines_that_plan_locally(zombi: Zombi, spark, duck, trino, ns: str):
    """DuckDB 1.4.4 and Trino 476 do not plan on the server: a table whose
    zombi.read.planning says server is read from its manifests, with the
    plan endpoints advertised, and no plan is made."""
    s = Story("duckdb+trino", zombi.shape)
    t = f"zombi.{ns}.events"
    with s.step("Spark writes a server-planned table"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE {t} ({CREATE_COLUMNS}) USING iceberg PARTITIONED BY (category) "
            "TBLPROPERTIES ('format-version' = '2', 'zombi.read.planning' = 'server')"
        )
        spark.sql(f"INSERT INTO {t} {gen_sql(0, 100)}")
        cfg = zombi.rest_table(ns, "events").get("config") or {}
        s.equal(cfg.get("scan-planning-mode"), "server", "loadTable config scan-planning-mode")
    want = sorted(model(0, 100))
    with s.step("DuckDB reads it"):
        before = zombi.metric(PLANS)
        got = [r[0] for r in duck.execute(f"SELECT id FROM zombi.{ns}.events ORDER BY id").fetchall()]
        s.equal(got, want, "DuckDB's ids")
        s.equal(zombi.metric(PLANS) - before, 0, "plans made on the server for DuckDB")
    with s.step("Trino reads it"):
        before = zombi.metric(PLANS)
        got = [r[0] for r in trino.query(f"SELECT id FROM zombi.{ns}.events ORDER BY id")[1]]
        s.equal(got, want, "Trino's ids")
        s.equal(zombi.metric(PLANS) - before, 0, "plans made on the server for Trino")
    with s.step("Spark reads it on the server, as the table says"):
        before = zombi.metric(PLANS)
        got = [r[0] for r in collect(spark, f"SELECT id FROM {t} ORDER BY id")]
        s.equal(got, want, "Spark's ids")
        s.check(zombi.metric(PLANS) > before, "Spark made no plan on the server for a table that says server")

