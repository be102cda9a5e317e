"""Spark against a zombi with auth on, once per server shape: catalog
`zombi` is configured with the URI and credential=ID:SECRET only (no
token); Iceberg's REST client takes a token from zombi's /v1/oauth/tokens,
refreshes it before it expires, and can do what its client's role allows
and nothing more."""

from __future__ import annotations

import re
import secrets
import time

import requests

import engines
from conftest import AUTH_TOKEN_LIFETIME, Zombi
from spark_rows import collect
from story import Story

ENGINE = "spark"


def token_requests(z: Zombi, since: int) -> list[tuple[str, str, str]]:
    """(grant_type, fields, authorization scheme) of each token request
    the server logged since."""
    return re.findall(r'msg="token request" .*?grant_type=(\S+) .*?fields="\[([^\]]*)\]" authorization=(\S*)',
                      z.log_text(since, limit=1 << 30))


def test_spark_credential(zombi_auth: Zombi, spark_engine):
    z = zombi_auth
    s = Story(ENGINE, z.shape)
    ns = f"sparkauth_{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {z.extra['admin']}"}
    r = requests.post(f"{z.url}/v1/namespaces", json={"namespace": [ns]}, headers=admin, timeout=30)
    assert r.status_code == 200, r.text
    t = f"zombi.{ns}.t"
    start = z.log_size()

    with s.step("the writer's session creates, inserts and reads"):
        writer = engines.spark_session(spark_engine, z.url, z.extra["clients"]["writer"].credential)
        writer.sql(f"CREATE TABLE {t} (id bigint, who string) USING iceberg")
        writer.sql(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
        s.equal(collect(writer, f"SELECT id, who FROM {t} ORDER BY id"), [(1, "a"), (2, "b")], "rows read by the writer")
        sent = token_requests(z, start)
        s.check(sent and sent[0][0] == "client_credentials", f"Spark's first token request: {sent}")
        s.equal(sent[0][1], "client_id client_secret grant_type scope", "the fields of Spark's client credentials request")

    with s.step("the reader's session reads"):
        reader = engines.spark_session(spark_engine, z.url, z.extra["clients"]["reader"].credential)
        s.equal(collect(reader, f"SELECT id FROM {t} ORDER BY id"), [(1,), (2,)], "rows read by the reader")

    with s.step("the reader's session may not write"):
        for stmt in (f"INSERT INTO {t} VALUES (3, 'c')", f"CREATE TABLE zombi.{ns}.u (id bigint) USING iceberg", f"DROP TABLE {t}"):
            try:
                reader.sql(stmt).collect()
            except Exception as e:  # Spark wraps Iceberg's ForbiddenException
                msg = str(e)
                s.check("Forbidden" in msg and "reader-client" in msg, f"{stmt}: the error does not show the 403: {msg[:600]}")
            else:
                raise AssertionError(f"{s.where()}: {stmt} by the reader succeeded")
        s.equal(collect(writer, f"SELECT count(*) FROM {t}"), [(2,)], "rows after the refused writes")

    if z.shape == "embedded":
        with s.step("the session refreshes its token before it expires"):
            # A refresh authenticates with the current token; one that
            # starts after the token expired (a busy machine) falls back to
            # the client credentials in a Basic header, which works too.
            exchange = ("urn:ietf:params:oauth:grant-type:token-exchange", "Bearer")
            since = z.log_size()
            deadline = time.monotonic() + 4 * AUTH_TOKEN_LIFETIME
            while time.monotonic() < deadline and exchange not in [(g, auth) for g, _, auth in token_requests(z, since)]:
                time.sleep(0.5)
            sent = token_requests(z, since)
            s.check(exchange in [(g, auth) for g, _, auth in sent],
                    f"no token exchange with the current token within {4 * AUTH_TOKEN_LIFETIME:.0f}s: {sent}")
            time.sleep(AUTH_TOKEN_LIFETIME)  # the first token has expired now
            writer.sql(f"INSERT INTO {t} VALUES (3, 'c')")
            s.equal(collect(reader, f"SELECT count(*) FROM {t}"), [(3,)], "rows read with refreshed tokens")
