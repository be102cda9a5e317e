"""Spark with vended credentials, on Postgres and a bucket on MinIO (shape
postgres-minio): catalog `zombi` is configured with the URI, a credential
and header.X-Iceberg-Access-Delegation=vended-credentials, and holds no S3
keys. Iceberg's S3FileIO uses the temporary keys Zombi answers from
MinIO's STS, limited to the table: the writer's write, the reader's only
read."""

from __future__ import annotations

import secrets

import requests

import engines
from conftest import Zombi
from spark_rows import collect
from story import Story

ENGINE = "spark"


def vended_session(spark_engine, z: Zombi, role: str):
    return engines.spark_session(spark_engine, z.url, z.extra["clients"][role].credential, engines.SPARK_VENDED_CREDENTIALS_CONF)


def test_spark_vended_credentials(zombi_sts: Zombi, spark_engine):
    z = zombi_sts
    s = Story(ENGINE, z.shape)
    ns = f"sparkvend_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    assert r.status_code == 200, r.text
    t = f"zombi.{ns}.t"

    with s.step("the writer's session creates, inserts and reads"):
        writer = vended_session(spark_engine, z, "writer")
        writer.sql(f"CREATE TABLE {t} (id bigint, who string) USING iceberg")
        writer.sql(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
        s.equal(collect(writer, f"SELECT id, who FROM {t} ORDER BY id"), [(1, "a"), (2, "b")], "rows read by the writer")

    with s.step("the reader's session reads"):
        reader = vended_session(spark_engine, z, "reader")
        s.equal(collect(reader, f"SELECT id FROM {t} ORDER BY id"), [(1,), (2,)], "rows read by the reader")

    with s.step("MinIO refuses the reader's data file"):
        r = requests.get(z.table_url(ns, "t"), headers=admin, timeout=30)
        r.raise_for_status()
        location = r.json()["metadata"]["location"]
        files = z.files_under(location)
        try:
            reader.sql(f"INSERT INTO {t} VALUES (3, 'c')").collect()
        except Exception as e:  # the S3 PUT fails before any commit
            s.check("Access Denied" in str(e) or "AccessDenied" in str(e),
                    f"the error does not show S3's refusal: {str(e)[:600]}")
        else:
            raise AssertionError(f"{s.where()}: the reader's INSERT succeeded")
        s.equal(collect(writer, f"SELECT count(*) FROM {t}"), [(2,)], "rows after the refused write")
        s.equal(z.files_under(location), files, "files after the refused write")


def test_spark_vended_live_read(zombi_sts: Zombi, spark_engine):
    """The live catalog plans on the server: its answer holds read-only
    credentials for the table, and Spark reads the plan's files, the hot
    tail among them, with those."""
    z = zombi_sts
    s = Story(ENGINE, z.shape)
    ns = f"sparkvendlive_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    assert r.status_code == 200, r.text

    with s.step("the writer's client POSTs events"):
        tok = z.client_token("writer")
        recs = [{"payload": f"e{i}"} for i in range(500)]
        r = requests.post(f"{z.url}/tables/{ns}.events/bulk", json={"records": recs},
                          headers={"Authorization": f"Bearer {tok}"}, timeout=60)
        s.equal(r.status_code, 202, f"POST bulk: {r.text[:500]}")

    with s.step("the reader's live session reads them all"):
        conf = {**engines.SPARK_VENDED_CREDENTIALS_CONF, "spark.sql.catalog.zombi.warehouse": "live",
                "spark.sql.catalog.zombi.cache-enabled": "false"}
        reader = engines.spark_session(spark_engine, z.url, z.extra["clients"]["reader"].credential, conf)
        before = z.metric('zombi_live_plans_total{read="latest"}', admin)
        s.equal(collect(reader, f"SELECT count(*), count(DISTINCT sequence) FROM zombi.{ns}.events"), [(500, 500)],
                "events read live")
        s.check(z.metric('zombi_live_plans_total{read="latest"}', admin) > before, "Spark did not plan on the server")
