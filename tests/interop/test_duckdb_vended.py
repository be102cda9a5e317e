"""DuckDB (iceberg extension from PyPI) with vended credentials, on Postgres
and a bucket on MinIO (shape postgres-minio): DuckDB authenticates as one
of Zombi's OAuth2 clients (an iceberg secret with the client's id and
secret), attaches with ACCESS_DELEGATION_MODE 'vended_credentials' and is
given no S3 secret: it reads and writes with the temporary keys, endpoint,
region and path style of the loadTable answer."""

from __future__ import annotations

import secrets

import pyarrow as pa
import requests
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

import engines
from conftest import Zombi
from story import Story

ENGINE = "duckdb"
SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "who", StringType(), required=False))


def vended_duckdb(z: Zombi, role: str):
    """An in-memory DuckDB with catalog zombi attached as the server's
    client of role, asking for vended credentials; no S3 secret."""
    import duckdb

    c = z.extra["clients"][role]
    con = duckdb.connect(
        config={"extension_directory": engines.duckdb_extension_dir(), "autoinstall_known_extensions": False}
    )
    for stmt in engines.duckdb_vended_setup(z.url, c.id, c.secret):
        con.execute(stmt)
    secrets_ = con.execute("SELECT type FROM duckdb_secrets()").fetchall()
    assert ("s3",) not in secrets_, f"DuckDB was given an S3 secret: {secrets_}"
    return con


def fetch(con, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_duckdb_vended_credentials(zombi_sts: Zombi):
    z = zombi_sts
    s = Story(ENGINE, z.shape)
    ns = f"duckvend_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    s.equal(r.status_code, 200, f"the admin token creates {ns}: {r.text}")

    with s.step("PyIceberg (admin) writes a table"):
        pyi = load_catalog("zombi-duck-admin", **engines.PYICEBERG_CATALOG_CONF, uri=z.url, token=z.extra["admin"],
                           **{"s3.endpoint": z.s3.endpoint, "s3.region": z.s3.region,
                              "s3.access-key-id": z.s3.access_key, "s3.secret-access-key": z.s3.secret_key,
                              "s3.force-virtual-addressing": "false"})
        t = pyi.create_table(f"{ns}.t", schema=SCHEMA)
        t.append(pa.table({"id": pa.array([1, 2, 3], pa.int64()), "who": pa.array(["a", "b", "c"])}))
        location = t.location()

    with s.step("the reader's DuckDB reads with vended keys"):
        reader = vended_duckdb(z, "reader")
        s.equal(fetch(reader, f"SELECT id, who FROM zombi.{ns}.t ORDER BY id"), [(1, "a"), (2, "b"), (3, "c")],
                "rows read by the reader")

    files = z.files_under(location)

    with s.step("MinIO refuses the reader's insert"):
        try:
            reader.execute(f"INSERT INTO zombi.{ns}.t VALUES (4, 'd')")
        except Exception as e:
            # DuckDB's httpfs names the URL it wrote and MinIO's status.
            s.check(z.s3.endpoint in str(e) and "403" in str(e),
                    f"the error does not show MinIO's refusal: {str(e)[:600]}")
        else:
            raise AssertionError(f"{s.where()}: the reader's INSERT succeeded")
        s.equal(z.files_under(location), files, "files after the refused write")

    with s.step("the writer's DuckDB inserts with vended keys"):
        writer = vended_duckdb(z, "writer")
        writer.execute(f"INSERT INTO zombi.{ns}.t VALUES (4, 'd')")
        s.equal(fetch(writer, f"SELECT id FROM zombi.{ns}.t ORDER BY id"), [(1,), (2,), (3,), (4,)],
                "rows read by the writer after its insert")
        s.equal(sorted(pyi.load_table(f"{ns}.t").scan().to_arrow()["id"].to_pylist()), [1, 2, 3, 4],
                "rows PyIceberg reads after DuckDB's insert")
