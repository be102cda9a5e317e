"""Spark with remote signing, once per server shape: catalog `zombi` is
configured with the URI, a credential and
header.X-Iceberg-Access-Delegation=remote-signing, and holds no S3 keys.
On S3, Iceberg's S3FileIO sends every request to Zombi's sign endpoint,
which signs only what the client's role allows inside the table."""

from __future__ import annotations

import secrets

import requests

import engines
from conftest import Zombi
from spark_rows import collect
from story import Story
from test_pyiceberg_signing import signed

ENGINE = "spark"


def signing_session(spark_engine, z: Zombi, role: str):
    return engines.spark_session(spark_engine, z.url, z.extra["clients"][role].credential, engines.SPARK_REMOTE_SIGNING_CONF)


def test_spark_remote_signing(zombi_auth: Zombi, spark_engine):
    z = zombi_auth
    s = Story(ENGINE, z.shape)
    ns = f"sparksign_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    assert r.status_code == 200, r.text
    t = f"zombi.{ns}.t"
    s3 = z.shape != "embedded"

    with s.step("the writer's session creates, inserts and reads"):
        before = signed(z, 200) if s3 else 0
        writer = signing_session(spark_engine, z, "writer")
        writer.sql(f"CREATE TABLE {t} (id bigint, who string) USING iceberg")
        writer.sql(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
        s.equal(collect(writer, f"SELECT id, who FROM {t} ORDER BY id"), [(1, "a"), (2, "b")], "rows read by the writer")
        if s3:
            s.check(signed(z, 200) > before, "the writer's requests were not signed by zombi")

    with s.step("the reader's session reads"):
        reader = signing_session(spark_engine, z, "reader")
        s.equal(collect(reader, f"SELECT id FROM {t} ORDER BY id"), [(1,), (2,)], "rows read by the reader")

    with s.step("the reader's session may not write"):
        refused = signed(z, 403) if s3 else 0
        try:
            reader.sql(f"INSERT INTO {t} VALUES (3, 'c')").collect()
        except Exception as e:  # Spark wraps the 403 of the sign call or the commit
            s.check("Forbidden" in str(e) or "403" in str(e), f"the error does not show a 403: {str(e)[:600]}")
        else:
            raise AssertionError(f"{s.where()}: the reader's INSERT succeeded")
        if s3:
            s.check(signed(z, 403) > refused, "the reader's data file PUT was not refused by the sign endpoint")
        s.equal(collect(writer, f"SELECT count(*) FROM {t}"), [(2,)], "rows after the refused write")

    with s.step("the writer expires snapshots: Spark deletes their files in bulk (DeleteObjects), signed by zombi"):
        writer.sql(f"INSERT OVERWRITE {t} VALUES (5, 'e')")
        refused = signed(z, 403) if s3 else 0
        rows = collect(writer, f"CALL zombi.system.expire_snapshots(table => '{ns}.t', "
                               f"older_than => TIMESTAMP '2999-01-01 00:00:00', retain_last => 1)")  # fmt: skip
        s.check(rows[0][0] >= 1, f"expire_snapshots deleted no data file: {rows}")
        if s3:
            s.equal(signed(z, 403), refused, "sign requests refused while expiring")
        s.equal(collect(writer, f"SELECT id FROM {t}"), [(5,)], "rows after the expiry")
