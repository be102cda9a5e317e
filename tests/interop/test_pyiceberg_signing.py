"""PyIceberg with remote signing, once per server shape: the catalog is
configured with the URI, a credential and
header.X-Iceberg-Access-Delegation=remote-signing, and holds no S3 keys.
On S3 every request it makes to the bucket is signed by Zombi's sign
endpoint, which signs only what the client's role allows inside the
table; on a local warehouse the header changes nothing."""

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
KEYS = ("s3.access-key-id", "s3.secret-access-key", "s3.session-token")


def signing_catalog(z: Zombi, role: str):
    """A PyIceberg catalog with the URI, the credential of the server's
    client of role and remote signing: nothing else."""
    conf = {
        **engines.PYICEBERG_CATALOG_CONF,
        **engines.PYICEBERG_REMOTE_SIGNING_CONF,
        engines.PYICEBERG_CREDENTIAL_KEY: z.extra["clients"][role].credential,
    }
    return load_catalog(f"zombi-sign-{z.shape}-{role}", **conf, uri=z.url)


def signed(z: Zombi, code: int) -> float:
    """How many sign requests the server answered with code."""
    r = requests.get(f"{z.url}/metrics", headers={"Authorization": f"Bearer {z.extra['admin']}"}, timeout=30)
    r.raise_for_status()
    total = 0.0
    for line in r.text.splitlines():
        if line.startswith("zombi_http_requests_total{") and 'route="/v1/namespaces/:namespace/tables/:table/sign"' in line \
                and f'code="{code}"' in line:
            total += float(line.rpartition(" ")[2])
    return total


def test_pyiceberg_remote_signing(zombi_auth: Zombi):
    z = zombi_auth
    s = Story(ENGINE, z.shape)
    ns = f"pysign_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    s.equal(r.status_code, 200, f"the admin token creates {ns}: {r.text}")
    s3 = z.shape != "embedded"
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "who": pa.array(["a", "b", "c"])})

    with s.step("the writer creates a table and appends"):
        writer = signing_catalog(z, "writer")
        t = writer.create_table(f"{ns}.t", schema=SCHEMA)
        props = t.io.properties
        for k in KEYS:
            s.check(k not in props, f"the table's FileIO was given {k}")
        if s3:
            s.equal(props.get("s3.signer"), "S3V4RestSigner", "s3.signer in the table's config")
            s.equal(type(t.io).__name__, "FsspecFileIO", "the table's FileIO")
        else:
            s.check("s3.signer" not in props, f"a local warehouse's config turns signing on: {props}")
        t.append(rows)
        got = writer.load_table(f"{ns}.t").scan().to_arrow()
        s.equal(sorted(got["id"].to_pylist()), [1, 2, 3], "rows read back by the writer")
        if s3:
            s.check(signed(z, 200) > 0, "the writer's requests were not signed by zombi")

    with s.step("the reader reads"):
        reader = signing_catalog(z, "reader")
        rt = reader.load_table(f"{ns}.t")
        for k in KEYS:
            s.check(k not in rt.io.properties, f"the reader's FileIO was given {k}")
        s.equal(sorted(rt.scan().to_arrow()["id"].to_pylist()), [1, 2, 3], "rows read by the reader")

    if not s3:
        return
    location = t.location()
    before = z.files_under(location)

    with s.step("the reader's signed PUT is refused"):
        refused = signed(z, 403)
        with pytest.raises(Exception) as e:
            with rt.io.new_output(f"{location}/data/reader.parquet").create(overwrite=True) as f:
                f.write(b"not a parquet file")
        s.check("403" in str(e.value) or "sign" in str(e.value).lower(), f"the refused write raised {e.value!r}")
        s.equal(z.files_under(location), before, "files under the table after the refused write")
        s.check(signed(z, 403) > refused, "no sign request was refused")

    with s.step("the sign endpoint refuses another table's files"):
        tok = z.client_token("writer")
        other = location.rsplit("/", 1)[0] + "/u/data/x.parquet"
        uri = f"{z.s3.endpoint}/{other.removeprefix('s3://')}"
        r = requests.post(
            f"{z.url}/{props['s3.signer.endpoint']}",
            json={"region": z.s3.region, "method": "GET", "uri": uri, "headers": {}},
            headers={"Authorization": f"Bearer {tok}"},
            timeout=30,
        )
        s.equal(r.status_code, 403, f"signing GET {uri}: {r.text}")
        s.check("ForbiddenException" in r.text, f"the 403's body: {r.text}")
