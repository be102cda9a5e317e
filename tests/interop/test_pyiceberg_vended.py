"""PyIceberg with vended credentials, on Postgres and a bucket on MinIO
(shape postgres-minio): the catalog is configured with the URI, a
credential and header.X-Iceberg-Access-Delegation=vended-credentials, and
holds no S3 keys. Zombi answers temporary keys from MinIO's STS, limited
to the table's location: read-write for the writer, read-only for the
reader, and MinIO refuses what they do not allow."""

from __future__ import annotations

import secrets

import pyarrow as pa
import pytest
import requests
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

import engines
from conftest import Zombi
from story import Story

ENGINE = "pyiceberg"
SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "who", StringType(), required=False))


def vended_catalog(z: Zombi, role: str):
    """A PyIceberg catalog with the URI, the credential of the server's
    client of role and vended credentials: nothing else."""
    conf = {
        **engines.PYICEBERG_CATALOG_CONF,
        **engines.PYICEBERG_VENDED_CREDENTIALS_CONF,
        engines.PYICEBERG_CREDENTIAL_KEY: z.extra["clients"][role].credential,
    }
    return load_catalog(f"zombi-vended-{role}", **conf, uri=z.url)


def test_pyiceberg_vended_credentials(zombi_sts: Zombi):
    z = zombi_sts
    s = Story(ENGINE, z.shape)
    ns = f"pyvend_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    s.equal(r.status_code, 200, f"the admin token creates {ns}: {r.text}")
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "who": pa.array(["a", "b", "c"])})

    with s.step("the writer creates a table and appends with vended keys"):
        writer = vended_catalog(z, "writer")
        t = writer.create_table(f"{ns}.t", schema=SCHEMA)
        props = t.io.properties
        s.check(props.get("s3.session-token"), f"the table's FileIO has no session token: {sorted(props)}")
        s.check(props.get("s3.access-key-id") not in (None, z.s3.access_key),
                "the table's FileIO was given the server's own keys, or none")
        t.append(rows)
        got = writer.load_table(f"{ns}.t").scan().to_arrow()
        s.equal(sorted(got["id"].to_pylist()), [1, 2, 3], "rows read back by the writer")
        other = writer.create_table(f"{ns}.u", schema=SCHEMA)
        other.append(rows)

    with s.step("the reader reads with vended keys"):
        reader = vended_catalog(z, "reader")
        rt = reader.load_table(f"{ns}.t")
        s.check(rt.io.properties.get("s3.session-token"), "the reader's FileIO has no session token")
        s.equal(sorted(rt.scan().to_arrow()["id"].to_pylist()), [1, 2, 3], "rows read by the reader")

    location = t.location()
    before = z.files_under(location)

    with s.step("MinIO refuses the reader's write"):
        with pytest.raises(OSError) as e:
            with rt.io.new_output(f"{location}/data/reader.parquet").create(overwrite=True) as f:
                f.write(b"not a parquet file")
        s.check("ACCESS_DENIED" in str(e.value).upper().replace(" ", "_"), f"the refused write raised {e.value!r}")
        s.equal(z.files_under(location), before, "files under the table after the refused write")

    with s.step("the table's keys do not reach another table"):
        metadata = other.metadata_location
        with pytest.raises(OSError) as e:
            rt.io.new_input(metadata).open().read()
        s.check("ACCESS_DENIED" in str(e.value).upper().replace(" ", "_"), f"reading {metadata} raised {e.value!r}")
        with pytest.raises(OSError):
            with t.io.new_output(other.location() + "/data/writer.parquet").create(overwrite=True) as f:
                f.write(b"x")

    with s.step("the credentials endpoint answers fresh keys"):
        tok = z.client_token("reader")
        r = requests.get(f"{z.url}/v1/namespaces/{ns}/tables/t/credentials",
                         headers={"Authorization": f"Bearer {tok}"}, timeout=30)
        s.equal(r.status_code, 200, f"loadCredentials: {r.text}")
        creds = r.json()["storage-credentials"]
        s.equal([c["prefix"] for c in creds], [location], "the credentials' prefixes")
