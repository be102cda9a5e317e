"""Spark views in zombi's REST catalog, once per server shape.

Iceberg's Spark catalog keeps a view in the REST catalog (POST
.../namespaces/{ns}/views) as one SQL representation of dialect "spark"
holding the text of the view's query, the query's schema (column comments
as field docs) and properties: the view's COMMENT as `comment`, its
TBLPROPERTIES, and Spark's own (`spark.query-column-names`,
`create_engine_version`, `engine_version`). ALTER VIEW ... SET/UNSET
TBLPROPERTIES and CREATE OR REPLACE VIEW are commits to the view (POST
.../views/{view}) with assert-view-uuid; SHOW VIEWS lists
(GET .../views); DROP VIEW deletes. A query names a view like a table:
Spark asks loadTable first and loadView on its 404.

A table and a view cannot have the same name: Spark sends CREATE VIEW over
a table's name straight to the catalog, and CREATE TABLE over a view's
name after a HEAD of the table only, so the refusal Spark reports is the
catalog's 409; the scenario checks the catalog's answers directly too.
"""

from __future__ import annotations

import collections

import pytest
import requests

from conftest import Zombi
from rest_views import (
    error_of,
    post_create_table,
    post_create_view,
    representations,
    rest_list_views,
    rest_view,
    view_schema,
)
from spark_rows import CREATE_COLUMNS, EPOCH_US, collect, gen_sql, model
from story import Story

ENGINE = "spark"

DAY_US = 86400 * 1_000_000
READ = "id, unix_micros(ts), category, value"


def by_category(rows: list[tuple]) -> list[tuple]:
    """(category, count, max id) of rows, ordered by category: what the
    view over the view computes."""
    n = collections.Counter(r[2] for r in rows)
    top: dict[str, int] = {}
    for r in rows:
        top[r[2]] = max(top.get(r[2], r[0]), r[0])
    return [(c, n[c], top[c]) for c in sorted(n)]


def test_spark_views(zombi: Zombi, spark, ns: str):
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"
    live = model(0, 120)
    recent_sql = f"SELECT id, ts, category, value FROM {t} WHERE ts >= TIMESTAMP '2024-03-03 00:00:00'"
    recent = [live[i] for i in sorted(live) if live[i][1] >= EPOCH_US + 2 * DAY_US]
    beta_sql = f"SELECT id, ts, category, value FROM {t} WHERE category = 'beta'"
    beta = [live[i] for i in sorted(live) if live[i][2] == "beta"]

    with s.step("setup: namespace and a partitioned table with rows"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(f"CREATE TABLE {t} ({CREATE_COLUMNS}) USING iceberg PARTITIONED BY (days(ts), category)")
        spark.sql(f"INSERT INTO {t} {gen_sql(0, 120)}")
        s.check(0 < len(recent) < len(live), f"{len(recent)} of {len(live)} rows fall in the view's filter")

    with s.step("CREATE VIEW over a table with a filter"):
        spark.sql(
            f"CREATE VIEW zombi.{ns}.recent (id COMMENT 'event id', ts, category, value) "
            f"COMMENT 'events from 2024-03-03 on' TBLPROPERTIES ('owner-team' = 'interop') AS {recent_sql}"
        )
        meta = rest_view(zombi, ns, "recent")
        s.check(meta is not None, "the catalog's loadView has no view 'recent' after CREATE VIEW")
        md = meta["metadata"]
        s.equal(md["format-version"], 1, "view format version")
        s.equal(representations(meta), [("spark", recent_sql)], "SQL representations (dialect, sql) in the catalog")
        s.equal(
            view_schema(meta),
            [("id", "long"), ("ts", "timestamptz"), ("category", "string"), ("value", "double")],
            "view schema (name, type) in the catalog",
        )
        s.equal(md["properties"].get("owner-team"), "interop", "view property owner-team in the catalog")
        s.equal(md["properties"].get("comment"), "events from 2024-03-03 on", "view comment in the catalog")
        s.equal(rest_list_views(zombi, ns), ["recent"], "listViews")
        s.equal(zombi.rest_table(ns, "recent"), None, "loadTable of the view's name (a view is no table)")
        view_uuid, view_loc = md["view-uuid"], meta["metadata-location"]
        first_version = md["current-version-id"]

    with s.step("SELECT through the view"):
        got = collect(spark, f"SELECT {READ} FROM zombi.{ns}.recent ORDER BY id")
        s.rows_equal(got, recent, "rows through view recent")

    with s.step("a view over the view"):
        spark.sql(
            f"CREATE VIEW zombi.{ns}.recent_by_category AS "
            f"SELECT category, count(*) AS n, max(id) AS max_id FROM zombi.{ns}.recent GROUP BY category"
        )
        got = collect(spark, f"SELECT category, n, max_id FROM zombi.{ns}.recent_by_category ORDER BY category")
        s.rows_equal(got, by_category(recent), "rows through the view over view recent")

    with s.step("SHOW VIEWS, SHOW TABLES"):
        got = sorted(r[1] for r in collect(spark, f"SHOW VIEWS IN zombi.{ns}"))
        s.equal(got, ["recent", "recent_by_category"], "SHOW VIEWS")
        got = sorted(r[1] for r in collect(spark, f"SHOW TABLES IN zombi.{ns}"))
        s.equal(got, ["events"], "SHOW TABLES (views are not tables)")
        s.equal(rest_list_views(zombi, ns), ["recent", "recent_by_category"], "the catalog's listViews")

    with s.step("DESCRIBE the view"):
        got = collect(spark, f"DESCRIBE zombi.{ns}.recent")
        s.equal(
            got,
            [("id", "bigint", "event id"), ("ts", "timestamp", ""), ("category", "string", ""), ("value", "double", "")],
            "DESCRIBE (column, type, comment)",
        )
        ext = {r[0]: r[1] for r in collect(spark, f"DESCRIBE EXTENDED zombi.{ns}.recent")}
        s.equal(ext.get("Comment"), "events from 2024-03-03 on", "DESCRIBE EXTENDED: Comment")
        s.equal(ext.get("View Query Output Columns"), "[id, ts, category, value]", "DESCRIBE EXTENDED: query columns")

    with s.step("ALTER VIEW SET and UNSET TBLPROPERTIES"):
        spark.sql(f"ALTER VIEW zombi.{ns}.recent SET TBLPROPERTIES ('stage' = 'two')")
        props = dict(collect(spark, f"SHOW TBLPROPERTIES zombi.{ns}.recent"))
        s.equal((props.get("stage"), props.get("owner-team")), ("two", "interop"), "SHOW TBLPROPERTIES after SET")
        md = rest_view(zombi, ns, "recent")["metadata"]
        s.equal(
            (md["properties"].get("stage"), md["properties"].get("owner-team")),
            ("two", "interop"),
            "view properties in the catalog after SET",
        )
        spark.sql(f"ALTER VIEW zombi.{ns}.recent UNSET TBLPROPERTIES ('owner-team')")
        props = dict(collect(spark, f"SHOW TBLPROPERTIES zombi.{ns}.recent"))
        s.check("owner-team" not in props and props.get("stage") == "two", f"SHOW TBLPROPERTIES after UNSET: {props}")
        md = rest_view(zombi, ns, "recent")["metadata"]
        s.check("owner-team" not in md["properties"], f"owner-team still in the catalog after UNSET: {md['properties']}")
        s.equal(
            (md["view-uuid"], md["current-version-id"]),
            (view_uuid, first_version),
            "view uuid and current version after property changes",
        )

    with s.step("CREATE OR REPLACE VIEW"):
        spark.sql(f"CREATE OR REPLACE VIEW zombi.{ns}.recent AS {beta_sql}")
        got = collect(spark, f"SELECT {READ} FROM zombi.{ns}.recent ORDER BY id")
        s.rows_equal(got, beta, "rows through the replaced view")
        got = collect(spark, f"SELECT category, n, max_id FROM zombi.{ns}.recent_by_category ORDER BY category")
        s.rows_equal(got, by_category(beta), "rows through the view over the replaced view")
        meta = rest_view(zombi, ns, "recent")
        md = meta["metadata"]
        s.equal(md["view-uuid"], view_uuid, "view uuid after CREATE OR REPLACE (the same view)")
        s.equal(representations(meta), [("spark", beta_sql)], "SQL representations after CREATE OR REPLACE")
        s.check(md["current-version-id"] != first_version, f"current-version-id stayed {first_version}")
        s.equal(len(md["versions"]), 2, "view versions after CREATE OR REPLACE")
        s.equal(
            [e["version-id"] for e in md["version-log"]][-2:],
            [first_version, md["current-version-id"]],
            "version-log after CREATE OR REPLACE",
        )
        view_loc = meta["metadata-location"]

    with s.step("a view cannot take a table's name, nor a table a view's"):
        table_loc = zombi.rest_table(ns, "events")["metadata-location"]
        with pytest.raises(Exception) as e:
            spark.sql(f"CREATE VIEW {t} AS SELECT 1 AS x")
        s.check("ALREADY_EXISTS" in str(e.value), f"CREATE VIEW over table events: {str(e.value)[:500]}")
        for sql in (
            f"CREATE TABLE zombi.{ns}.recent (x INT) USING iceberg",
            f"CREATE TABLE zombi.{ns}.recent USING iceberg AS SELECT 1 AS x",
        ):
            with pytest.raises(Exception) as e:
                spark.sql(sql)
            s.check("ALREADY_EXISTS" in str(e.value), f"{sql}: {str(e.value)[:500]}")
        s.equal(zombi.rest_table(ns, "events")["metadata-location"], table_loc, "table events after the clashes")
        s.equal(rest_view(zombi, ns, "events"), None, "loadView of the table's name")
        s.equal(zombi.rest_table(ns, "recent"), None, "loadTable of the view's name")
        s.equal(rest_view(zombi, ns, "recent")["metadata-location"], view_loc, "view recent after the clashes")

    with s.step("the catalog answers a clash with 409 AlreadyExists"):
        got = error_of(post_create_view(zombi, ns, "events"))
        s.equal(got, (409, "AlreadyExistsException"), "createView named like table events (HTTP status, error type)")
        for stage in (False, True):
            got = error_of(post_create_table(zombi, ns, "recent", stage=stage))
            s.equal(
                got,
                (409, "AlreadyExistsException"),
                f"createTable (stage-create {stage}) named like view recent (HTTP status, error type)",
            )
        s.equal(rest_list_views(zombi, ns), ["recent", "recent_by_category"], "listViews after the clashes")

    with s.step("DROP VIEW"):
        spark.sql(f"DROP VIEW zombi.{ns}.recent_by_category")
        got = sorted(r[1] for r in collect(spark, f"SHOW VIEWS IN zombi.{ns}"))
        s.equal(got, ["recent"], "SHOW VIEWS after DROP VIEW")
        s.equal(rest_view(zombi, ns, "recent_by_category"), None, "loadView after DROP VIEW")
        with pytest.raises(Exception) as e:
            spark.sql(f"DROP VIEW {t}")
        s.check("NOT_FOUND" in str(e.value), f"DROP VIEW of table events: {str(e.value)[:500]}")
        s.check(zombi.rest_table(ns, "events") is not None, "DROP VIEW of a table's name dropped the table")

    with s.step("DROP NAMESPACE is refused while a view is left"):
        spark.sql(f"DROP TABLE {t} PURGE")
        with pytest.raises(Exception) as e:
            spark.sql(f"DROP NAMESPACE zombi.{ns}")
        s.check("NamespaceNotEmpty" in str(e.value), f"DROP NAMESPACE with view recent in it: {str(e.value)[:500]}")
        r = requests.get(f"{zombi.url}/v1/namespaces/{ns}", timeout=30)
        s.equal(r.status_code, 200, "loadNamespace after the refused drop")
        s.check(rest_view(zombi, ns, "recent") is not None, "view recent is gone after the refused DROP NAMESPACE")
        spark.sql(f"DROP VIEW zombi.{ns}.recent")
        spark.sql(f"DROP NAMESPACE zombi.{ns}")
        names = [r[0] for r in collect(spark, "SHOW NAMESPACES IN zombi")]
        s.check(ns not in names, f"{ns!r} still listed after DROP NAMESPACE")
