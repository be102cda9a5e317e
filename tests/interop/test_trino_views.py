"""Trino 476 views in zombi's REST catalog, and views across engines, once
per server shape.

Trino's Iceberg connector keeps a view in the REST catalog as one SQL
representation of dialect "trino" (the query as Trino formats it), the
query's schema, and properties (`trino.run-as-owner`, `comment`); it sends
a location under the namespace's and, on CREATE OR REPLACE, a commit with
a new version and a new location. SHOW TABLES and information_schema list
the catalog's views next to its tables.

Trino reads only views that have a "trino" representation: its REST
catalog asks the view for sqlFor("trino"), which falls back to another
dialect when there is none, and refuses anything else with
ICEBERG_UNSUPPORTED_VIEW_DIALECT "Cannot read unsupported dialect '<d>'
for view '<schema>.<view>'" (TrinoRestCatalog.getView in Trino 476; no
translation between dialects). So a view Spark created (dialect "spark"
only) is listed by Trino as a view but cannot be queried in Trino; a view
that carries a "trino" representation next to the "spark" one (written
here through PyIceberg's create_view) reads in both engines. Iceberg's
Spark catalog has no such check: sqlFor("spark") falls back to the only
representation, so Spark reads Trino's views as long as the SQL parses in
Spark too (it does for these).
"""

from __future__ import annotations

import collections

import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion

from conftest import Zombi
from engines import TrinoError
from rest_views import representations, rest_list_views, rest_view, view_schema
from spark_rows import EPOCH_US, collect, model
from story import Story
from test_trino import MICROS, rows, trino_gen

ENGINE = "trino"

DAY_US = 86400 * 1_000_000


def by_category(rs: list[tuple]) -> list[tuple]:
    n = collections.Counter(r[2] for r in rs)
    top: dict[str, int] = {}
    for r in rs:
        top[r[2]] = max(top.get(r[2], r[0]), r[0])
    return [(c, n[c], top[c]) for c in sorted(n)]


def test_trino_views(zombi: Zombi, trino, spark, catalog, ns: str):
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"
    live = model(0, 120)
    recent = [live[i] for i in sorted(live) if live[i][1] >= EPOCH_US + 2 * DAY_US]
    beta = [live[i] for i in sorted(live) if live[i][2] == "beta"]
    gamma = [(i, live[i][2]) for i in sorted(live) if live[i][2] == "gamma"]
    read = f"id, {MICROS}, category, value"

    with s.step("setup: schema and a partitioned table with rows"):
        trino.query(f"CREATE SCHEMA zombi.{ns}")
        trino.query(
            f"CREATE TABLE {t} (id bigint, ts timestamp(6) with time zone, category varchar, value double) "
            "WITH (partitioning = ARRAY['day(ts)', 'category'])"
        )
        trino.query(f"INSERT INTO {t} {trino_gen(0, 120)}")
        s.check(0 < len(recent) < len(live), f"{len(recent)} of {len(live)} rows fall in the view's filter")

    with s.step("CREATE VIEW over a table with a filter"):
        trino.query(
            f"CREATE VIEW zombi.{ns}.recent COMMENT 'events from 2024-03-03 on' AS "
            f"SELECT id, ts, category, value FROM {t} WHERE ts >= TIMESTAMP '2024-03-03 00:00:00 UTC'"
        )
        meta = rest_view(zombi, ns, "recent")
        s.check(meta is not None, "the catalog's loadView has no view 'recent' after CREATE VIEW")
        md = meta["metadata"]
        s.equal([d for d, _ in representations(meta)], ["trino"], "dialects of the view's SQL representations")
        s.equal(
            view_schema(meta),
            [("id", "long"), ("ts", "timestamptz"), ("category", "string"), ("value", "double")],
            "view schema (name, type) in the catalog",
        )
        s.equal(md["properties"].get("comment"), "events from 2024-03-03 on", "view comment in the catalog")
        view_uuid, first_version = md["view-uuid"], md["current-version-id"]

    with s.step("SELECT through the view"):
        got = rows(trino, f"SELECT {read} FROM zombi.{ns}.recent ORDER BY id", micros_at=1)
        s.rows_equal(got, recent, "rows through view recent")

    with s.step("a view over the view"):
        trino.query(
            f"CREATE VIEW zombi.{ns}.by_category AS "
            f"SELECT category, count(*) AS n, max(id) AS max_id FROM zombi.{ns}.recent GROUP BY category"
        )
        got = rows(trino, f"SELECT category, n, max_id FROM zombi.{ns}.by_category ORDER BY category")
        s.rows_equal(got, by_category(recent), "rows through the view over view recent")

    with s.step("SHOW TABLES and information_schema list the views"):
        got = sorted(r[0] for r in rows(trino, f"SHOW TABLES FROM zombi.{ns}"))
        s.equal(got, ["by_category", "events", "recent"], "SHOW TABLES")
        got = rows(
            trino,
            f"SELECT table_name, table_type FROM zombi.information_schema.tables WHERE table_schema = '{ns}' ORDER BY table_name",
        )
        s.equal(
            got,
            [("by_category", "VIEW"), ("events", "BASE TABLE"), ("recent", "VIEW")],
            "information_schema.tables",
        )
        s.equal(rest_list_views(zombi, ns), ["by_category", "recent"], "the catalog's listViews")

    with s.step("COMMENT ON VIEW"):
        trino.query(f"COMMENT ON VIEW zombi.{ns}.recent IS 'recent events'")
        md = rest_view(zombi, ns, "recent")["metadata"]
        s.equal(md["properties"].get("comment"), "recent events", "view comment in the catalog after COMMENT ON VIEW")

    with s.step("CREATE OR REPLACE VIEW"):
        trino.query(
            f"CREATE OR REPLACE VIEW zombi.{ns}.recent AS SELECT id, ts, category, value FROM {t} WHERE category = 'beta'"
        )
        got = rows(trino, f"SELECT {read} FROM zombi.{ns}.recent ORDER BY id", micros_at=1)
        s.rows_equal(got, beta, "rows through the replaced view")
        got = rows(trino, f"SELECT category, n, max_id FROM zombi.{ns}.by_category ORDER BY category")
        s.rows_equal(got, by_category(beta), "rows through the view over the replaced view")
        meta = rest_view(zombi, ns, "recent")
        md = meta["metadata"]
        s.equal(md["view-uuid"], view_uuid, "view uuid after CREATE OR REPLACE (the same view)")
        s.check(md["current-version-id"] != first_version, f"current-version-id stayed {first_version}")
        s.equal(len(md["versions"]), 2, "view versions after CREATE OR REPLACE")
        s.equal([d for d, _ in representations(meta)], ["trino"], "dialects after CREATE OR REPLACE")

    with s.step("Spark reads Trino's views"):
        got = collect(spark, f"SELECT id, unix_micros(ts), category, value FROM zombi.{ns}.recent ORDER BY id")
        s.rows_equal(got, beta, "Spark: rows through Trino's view recent")
        got = collect(spark, f"SELECT category, n, max_id FROM zombi.{ns}.by_category ORDER BY category")
        s.rows_equal(got, by_category(beta), "Spark: rows through Trino's view over a view")

    with s.step("Trino lists a Spark view and refuses to read its dialect"):
        spark.sql(f"CREATE VIEW zombi.{ns}.spark_recent AS SELECT id, category FROM {t} WHERE id < 10")
        meta = rest_view(zombi, ns, "spark_recent")
        s.equal([d for d, _ in representations(meta)], ["spark"], "dialects of Spark's view")
        got = rows(
            trino,
            f"SELECT table_type FROM zombi.information_schema.tables WHERE table_schema = '{ns}' AND table_name = 'spark_recent'",
        )
        s.equal(got, [("VIEW",)], "information_schema.tables: Spark's view")
        with pytest.raises(TrinoError) as e:
            trino.query(f"SELECT id FROM zombi.{ns}.spark_recent")
        want = f"ICEBERG_UNSUPPORTED_VIEW_DIALECT: Cannot read unsupported dialect 'spark' for view '{ns}.spark_recent'"
        s.check(str(e.value).startswith(want), f"Trino on Spark's view: got {str(e.value)[:500]!r}, want {want!r}")

    with s.step("a view with a spark and a trino representation reads in both"):
        sql = f"SELECT id, category FROM {t} WHERE category = 'gamma'"
        catalog.create_view(
            (ns, "both"),
            Schema(
                NestedField(1, "id", LongType(), required=False),
                NestedField(2, "category", StringType(), required=False),
            ),
            ViewVersion(
                schema_id=0,
                representations=[
                    ViewRepresentation(SQLViewRepresentation(type="sql", sql=sql, dialect="spark")),
                    ViewRepresentation(SQLViewRepresentation(type="sql", sql=sql, dialect="trino")),
                ],
                default_namespace=(ns,),
                summary={"engine-name": "pyiceberg"},
            ),
        )
        s.equal(
            sorted(d for d, _ in representations(rest_view(zombi, ns, "both"))),
            ["spark", "trino"],
            "dialects of the two-dialect view",
        )
        got = rows(trino, f"SELECT id, category FROM zombi.{ns}.both ORDER BY id")
        s.rows_equal(got, gamma, "Trino: rows through the two-dialect view")
        got = collect(spark, f"SELECT id, category FROM zombi.{ns}.both ORDER BY id")
        s.rows_equal(got, gamma, "Spark: rows through the two-dialect view")

    with s.step("DROP VIEW"):
        trino.query(f"DROP VIEW zombi.{ns}.by_category")
        trino.query(f"DROP VIEW zombi.{ns}.recent")
        s.equal(rest_list_views(zombi, ns), ["both", "spark_recent"], "the catalog's listViews after DROP VIEW")
        got = sorted(r[0] for r in rows(trino, f"SHOW TABLES FROM zombi.{ns}"))
        s.equal(got, ["both", "events", "spark_recent"], "SHOW TABLES after DROP VIEW")
