"""PyIceberg against a zombi with auth on, once per server shape: the
catalog is configured with the URI and credential=ID:SECRET only, takes a
token from zombi's /v1/oauth/tokens, and can do what its client's role
allows and nothing more."""

from __future__ import annotations

import re
import secrets
import time

import pyarrow as pa
import pytest
import requests
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import ForbiddenError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

import engines
from conftest import AUTH_TOKEN_LIFETIME, Zombi
from story import Story

ENGINE = "pyiceberg"
SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "who", StringType(), required=False))


def credential_catalog(z: Zombi, role: str):
    """A PyIceberg catalog with the URI and the credential of the server's
    client of role: nothing else."""
    conf = {**engines.PYICEBERG_CATALOG_CONF, engines.PYICEBERG_CREDENTIAL_KEY: z.extra["clients"][role].credential}
    return load_catalog(f"zombi-{z.shape}-{role}", **conf, uri=z.url)


def token_requests(z: Zombi, since: int) -> list[str]:
    """The grant types of the token requests the server logged since."""
    return re.findall(r'msg="token request" .*?grant_type=(\S+)', z.log_text(since, limit=1 << 30))


def test_pyiceberg_credential(zombi_auth: Zombi):
    z = zombi_auth
    s = Story(ENGINE, z.shape)
    ns = f"pyauth_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    start = z.log_size()

    with s.step("no credential"):
        r = requests.get(f"{z.url}/v1/config", timeout=30)
        s.equal(r.status_code, 401, "GET /v1/config without a token")
        s.check(r.headers.get("WWW-Authenticate", "").startswith("Bearer"), "401 without WWW-Authenticate: Bearer")

    with s.step("the writer client takes a token"):
        writer = credential_catalog(z, "writer")
        # PyIceberg 0.12 takes one token for the config call and one for
        # the session it builds from the config.
        grants = token_requests(z, start)
        s.check(grants and set(grants) == {"client_credentials"}, f"token requests after load_catalog: {grants}")
        log = z.log_text(start, limit=1 << 30)
        s.check('fields="[client_id client_secret grant_type scope]"' in log, f"what PyIceberg sent:\n{log[-2000:]}")

    with s.step("the writer may not create a namespace"):
        with pytest.raises(ForbiddenError):
            writer.create_namespace(ns)
        r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
        s.equal(r.status_code, 200, f"the admin token creates {ns}: {r.text}")

    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "who": pa.array(["a", "b", "c"])})
    with s.step("the writer creates a table and appends"):
        t = writer.create_table(f"{ns}.t", schema=SCHEMA)
        t.append(rows)
        s.equal(sorted(writer.load_table(f"{ns}.t").scan().to_arrow()["id"].to_pylist()), [1, 2, 3], "rows read back by the writer")

    with s.step("the reader reads"):
        reader = credential_catalog(z, "reader")
        got = reader.load_table(f"{ns}.t").scan().to_arrow()
        s.equal(sorted(got["id"].to_pylist()), [1, 2, 3], "rows read by the reader")

    with s.step("the reader may not write"):
        with pytest.raises(ForbiddenError) as e:
            reader.load_table(f"{ns}.t").append(rows)
        s.check("reader-client" in str(e.value) and "writer" in str(e.value), f"the 403's message: {e.value}")
        with pytest.raises(ForbiddenError):
            reader.create_table(f"{ns}.u", schema=SCHEMA)
        with pytest.raises(ForbiddenError):
            reader.drop_table(f"{ns}.t")
        s.equal(len(reader.load_table(f"{ns}.t").scan().to_arrow()), 3, "rows after the refused writes")

    if z.shape == "embedded":
        with s.step("an expired token is fetched again"):
            # PyIceberg fetches a token once; on the 401 of an expired one
            # it fetches a new one and retries.
            since = z.log_size()
            time.sleep(AUTH_TOKEN_LIFETIME + 1)
            s.equal(len(reader.load_table(f"{ns}.t").scan().to_arrow()), 3, "rows read after the token expired")
            grants = token_requests(z, since)
            s.check(grants and set(grants) == {"client_credentials"}, f"token requests after expiry: {grants}")
