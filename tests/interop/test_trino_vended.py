"""Trino with vended credentials, on Postgres and a bucket on MinIO (shape
postgres-minio): catalog `zombi` authenticates as one of Zombi's OAuth2
clients, has iceberg.rest-catalog.vended-credentials-enabled=true, and is
told the S3 endpoint, region and path style (Trino 476 reads those from
its own configuration only) but no keys. Trino's S3 file system uses the
temporary keys Zombi answers from MinIO's STS, limited to the table: the
writer's write, the reader's only read."""

from __future__ import annotations

import secrets

import requests

import engines
from conftest import Zombi
from story import Story

ENGINE = "trino"


def use_client(trino_engine, z: Zombi, role: str) -> None:
    props = engines.trino_catalog_properties(z.url, z.s3, credential=z.extra["clients"][role].credential)
    assert not any(k.startswith("s3.aws-") for k in props), f"Trino was given S3 keys: {sorted(props)}"
    trino_engine.use_catalog(props)


def test_trino_vended_credentials(zombi_sts: Zombi, trino_engine):
    z = zombi_sts
    s = Story(ENGINE, z.shape)
    trino = trino_engine
    ns = f"trinovend_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    s.equal(r.status_code, 200, f"the admin token creates {ns}: {r.text}")
    t = f"zombi.{ns}.t"

    with s.step("the writer's catalog creates, inserts and reads"):
        use_client(trino, z, "writer")
        trino.query(f"CREATE TABLE {t} (id bigint, who varchar)")
        trino.query(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
        s.equal(trino.query(f"SELECT id, who FROM {t} ORDER BY id")[1], [[1, "a"], [2, "b"]], "rows read by the writer")
        trino.query(f"CREATE TABLE zombi.{ns}.u AS SELECT * FROM {t}")

    r = requests.get(z.table_url(ns, "t"), headers=admin, timeout=30)
    r.raise_for_status()
    location = r.json()["metadata"]["location"]
    files = z.files_under(location)
    s.check(any(f.endswith(".parquet") for f in files), f"no data file under {location}: {files}")

    with s.step("the reader's catalog reads"):
        use_client(trino, z, "reader")
        s.equal(trino.query(f"SELECT id FROM {t} ORDER BY id")[1], [[1], [2]], "rows read by the reader")

    with s.step("MinIO refuses the reader's data file"):
        try:
            trino.query(f"INSERT INTO {t} VALUES (3, 'c')")
        except engines.TrinoError as e:
            s.check("Access Denied" in str(e) or "AccessDenied" in str(e),
                    f"the error does not show S3's refusal: {str(e)[:600]}")
        else:
            raise AssertionError(f"{s.where()}: the reader's INSERT succeeded")
        s.equal(z.files_under(location), files, "files after the refused write")

    with s.step("the writer sees the rows it wrote, and no more"):
        use_client(trino, z, "writer")
        s.equal(trino.query(f"SELECT count(*) FROM {t}")[1], [[2]], "rows after the refused write")
        s.equal(trino.query(f"SELECT count(*) FROM zombi.{ns}.u")[1], [[2]], "rows of the CTAS copy")
