"""PyIceberg 0.12's view calls against views Spark created in zombi's REST
catalog, once per server shape.

PyIceberg 0.12's REST catalog has list_views, view_exists, load_view,
create_view, drop_view and register_view (no rename, no view commits).
list_views, load_view and drop_view first check that the server's config
advertises the endpoint (list_views quietly returns [] when it does not);
view_exists is a HEAD that takes 404 as False; create_view posts without
a check. register_view is left out: it needs the register-view endpoint,
which is not part of views as the engines use them.
"""

from __future__ import annotations

import pytest
from pyiceberg.exceptions import NoSuchViewError, TableAlreadyExistsError, ViewAlreadyExistsError
from pyiceberg.schema import Schema
from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestamptzType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion

from conftest import Zombi
from rest_views import rest_view
from spark_rows import CREATE_COLUMNS, collect, gen_sql, model
from story import Story

ENGINE = "pyiceberg"

TWO_COLUMNS = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "category", StringType(), required=False),
)


def spark_version(sql: str, ns: str) -> ViewVersion:
    return ViewVersion(
        schema_id=0,
        representations=[ViewRepresentation(SQLViewRepresentation(type="sql", sql=sql, dialect="spark"))],
        default_namespace=(ns,),
        summary={"engine-name": "pyiceberg"},
    )


def test_pyiceberg_views(zombi: Zombi, spark, catalog, ns: str):
    s = Story(ENGINE, zombi.shape)
    t = f"zombi.{ns}.events"
    live = model(0, 60)
    recent_sql = f"SELECT id, ts, category, value FROM {t} WHERE ts >= TIMESTAMP '2024-03-02 00:00:00'"
    beta_sql = f"SELECT id, ts, category, value FROM {t} WHERE category = 'beta'"
    gamma_sql = f"SELECT id, category FROM {t} WHERE category = 'gamma'"

    with s.step("setup: Spark creates a table, two views, and replaces one"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(f"CREATE TABLE {t} ({CREATE_COLUMNS}) USING iceberg")
        spark.sql(f"INSERT INTO {t} {gen_sql(0, 60)}")
        spark.sql(f"CREATE VIEW zombi.{ns}.recent TBLPROPERTIES ('owner-team' = 'interop') AS {recent_sql}")
        spark.sql(
            f"CREATE VIEW zombi.{ns}.by_category AS "
            f"SELECT category, count(*) AS n FROM zombi.{ns}.recent GROUP BY category"
        )
        spark.sql(f"CREATE OR REPLACE VIEW zombi.{ns}.recent AS {beta_sql}")

    with s.step("list_views, list_tables"):
        s.equal(sorted(catalog.list_views(ns)), [(ns, "by_category"), (ns, "recent")], "list_views")
        s.equal(catalog.list_tables(ns), [(ns, "events")], "list_tables (views are not tables)")

    with s.step("view_exists, table_exists"):
        got = {n: catalog.view_exists((ns, n)) for n in ("recent", "by_category", "events", "missing")}
        s.equal(got, {"recent": True, "by_category": True, "events": False, "missing": False}, "view_exists")
        s.equal(catalog.table_exists((ns, "recent")), False, "table_exists of a view")

    with s.step("load_view of Spark's replaced view"):
        v = catalog.load_view((ns, "recent"))
        md = rest_view(zombi, ns, "recent")["metadata"]
        s.equal(v.name(), (ns, "recent"), "name()")
        s.equal(str(v.uuid()), md["view-uuid"], "uuid() vs the catalog's view-uuid")
        s.equal(v.location(), md["location"], "location()")
        rep = v.sql_for("spark")
        s.check(rep is not None, "sql_for('spark') found no representation")
        s.equal((rep.dialect, rep.sql), ("spark", beta_sql), "sql_for('spark') (dialect, sql)")
        s.equal(v.sql_for("trino"), None, "sql_for('trino') (Spark wrote only its own dialect)")
        s.equal(
            [(f.name, f.field_type) for f in v.schema().fields],
            [("id", LongType()), ("ts", TimestamptzType()), ("category", StringType()), ("value", DoubleType())],
            "schema() (name, type)",
        )
        s.equal(len(v.versions), 2, "versions after CREATE OR REPLACE")
        s.equal(v.history()[-1].version_id, v.current_version().version_id, "last history entry is the current version")
        s.equal(v.properties.get("owner-team"), "interop", "properties: owner-team")

    with s.step("load_view of a table's name and of a missing view"):
        for name in ("events", "missing"):
            with pytest.raises(NoSuchViewError):
                catalog.load_view((ns, name))

    with s.step("create_view, read in Spark"):
        made = catalog.create_view(
            (ns, "gamma_ids"), TWO_COLUMNS, spark_version(gamma_sql, ns), properties={"made-by": "pyiceberg"}
        )
        s.equal(made.properties.get("made-by"), "pyiceberg", "properties of the created view")
        s.equal(made.sql_for("spark").sql, gamma_sql, "sql of the created view")
        md = rest_view(zombi, ns, "gamma_ids")["metadata"]
        s.equal(str(made.uuid()), md["view-uuid"], "uuid of the created view vs the catalog's")
        got = collect(spark, f"SELECT id, category FROM zombi.{ns}.gamma_ids ORDER BY id")
        want = [(i, live[i][2]) for i in sorted(live) if live[i][2] == "gamma"]
        s.rows_equal(got, want, "Spark: rows through PyIceberg's view")
        s.equal(
            sorted(catalog.list_views(ns)),
            [(ns, "by_category"), (ns, "gamma_ids"), (ns, "recent")],
            "list_views after create_view",
        )

    with s.step("create_view and create_table refuse a taken name"):
        with pytest.raises(ViewAlreadyExistsError):
            catalog.create_view((ns, "gamma_ids"), TWO_COLUMNS, spark_version(gamma_sql, ns))
        with pytest.raises(ViewAlreadyExistsError):
            catalog.create_view((ns, "events"), TWO_COLUMNS, spark_version(gamma_sql, ns))
        with pytest.raises(TableAlreadyExistsError):
            catalog.create_table((ns, "recent"), schema=TWO_COLUMNS)
        s.equal(catalog.table_exists((ns, "events")), True, "table events after the clash")
        s.equal(catalog.list_tables(ns), [(ns, "events")], "list_tables after the clashes")

    with s.step("drop_view"):
        catalog.drop_view((ns, "by_category"))
        s.equal(sorted(catalog.list_views(ns)), [(ns, "gamma_ids"), (ns, "recent")], "list_views after drop_view")
        s.equal(catalog.view_exists((ns, "by_category")), False, "view_exists after drop_view")
        with pytest.raises(NoSuchViewError):
            catalog.drop_view((ns, "by_category"))
        with pytest.raises(NoSuchViewError):
            catalog.drop_view((ns, "events"))
        s.equal(catalog.table_exists((ns, "events")), True, "table events after drop_view of its name")
        got = sorted(r[1] for r in collect(spark, f"SHOW VIEWS IN zombi.{ns}"))
        s.equal(got, ["gamma_ids", "recent"], "Spark: SHOW VIEWS after drop_view")
