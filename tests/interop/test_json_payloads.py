"""JSON payloads in an event table, read by field in every engine with the
queries docs/ingest.md shows (json_queries.py); once per server shape and
per engine.

The producer side runs once per shape (a module-scoped fixture): the
events of json_queries.EVENT_LINES are POSTed as NDJSON to a new event
table and flushed. Each engine then runs its two queries, and each answer
must equal what the events sent give: the expected rows are computed here
from the payloads as parsed from the lines that were POSTed, with the
sequences zombi answered. Every assertion names the engine, the shape and
the step.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import pytest
import requests

import json_queries
from conftest import Unavailable, Zombi
from story import Story

pytestmark = pytest.mark.parametrize("engine", json_queries.ENGINES)

PRODUCER = "zombi ingest"  # the engine named by failures of the producer side


@dataclass
class JsonTable:
    table: str  # namespace.name
    sent: dict[int, dict]  # sequence -> the payload as the producer sent it, parsed


@pytest.fixture(scope="module")
def json_events(zombi_server) -> JsonTable | None:
    """json_queries.EVENT_LINES POSTed in one NDJSON bulk request to a new
    event table (auto-created), then flushed."""
    z = zombi_server
    if isinstance(z, Unavailable):
        return None
    s = Story(PRODUCER, z.shape)
    ns = f"json_payloads_{secrets.token_hex(3)}"
    table = f"{ns}.clicks"
    payloads = [json.loads(line)["payload"] for line in json_queries.EVENT_LINES]

    with s.step("the events cover every case the queries are for"):
        addresses = [p["address"] for p in payloads if "address" in p]
        s.check(any("amount" not in p for p in payloads), "no event without amount")
        s.check(any("address" not in p for p in payloads), "no event without address")
        s.check(any("city" not in a for a in addresses), "no address without city")
        s.check(any("user" not in p for p in payloads), "no event without user")
        s.check(any("kind" in p and p["kind"] is None for p in payloads), "no event with kind null")
        s.check(any(p.get("user") and not p["user"].isascii() for p in payloads), "no non-ASCII user")
        s.check(any("\\u" in line for line in json_queries.EVENT_LINES), "no string written with an escape")
        s.check(any(abs(p.get("amount") or 0) > 2**53 for p in payloads), "no amount beyond a double's integers")

    with s.step("POST the events as NDJSON (auto-creates the table)"):
        body = ("\n".join(json_queries.EVENT_LINES) + "\n").encode()
        r = requests.post(f"{z.url}/tables/{table}/bulk", data=body,
                          headers={"Content-Type": json_queries.CONTENT_TYPE}, timeout=60)  # fmt: skip
        s.check(r.status_code == 202, f"POST /tables/{table}/bulk answered {r.status_code}, want 202: {r.text[:2000]}")
        offsets = r.json()["offsets"]
        s.equal(len(offsets), len(payloads), f"offsets answered for {len(payloads)} events")
        s.equal(len(set(offsets)), len(offsets), "distinct offsets")
        sent = dict(zip(offsets, payloads))

    with s.step("the payload column stays binary"):
        meta = z.rest_table(ns, "clicks")
        s.check(meta is not None, f"loadTable {table} answered 404 after the POST")
        schema = next(sc for sc in meta["metadata"]["schemas"] if sc["schema-id"] == meta["metadata"]["current-schema-id"])
        types = {f["name"]: f["type"] for f in schema["fields"]}
        s.equal(types.get("payload"), "binary", f"type of column payload in {types}")

    with s.step("flush"):
        r = requests.post(f"{z.url}/tables/{table}/flush", timeout=120)
        s.check(r.status_code == 200, f"POST /tables/{table}/flush answered {r.status_code}: {r.text[:2000]}")
        res = r.json()
        s.check(res["watermark"] >= max(offsets),
                f"flush answered watermark {res['watermark']}, below the last offset {max(offsets)}: {res}")  # fmt: skip
    return JsonTable(table, sent)


# ---------------------------------------------------------------------------
# What the events sent give, computed from them


def want_fields(sent: dict[int, dict]) -> list[tuple]:
    """(sequence, user, amount, kind, city, country) of every event by
    sequence, None where the payload has no such field or holds null."""
    rows = []
    for seq in sorted(sent):
        p = sent[seq]
        address = p.get("address") or {}
        rows.append((seq, p.get("user"), p.get("amount"), p.get("kind"), address.get("city"), address.get("country")))
    return rows


def want_by_kind(sent: dict[int, dict]) -> list[tuple]:
    """(kind, events, sum of amounts) of the events in country CH, by kind,
    the kind None last; a sum over no amount is None, as in SQL."""
    groups: dict[str | None, tuple[int, int | None]] = {}
    for p in sent.values():
        if (p.get("address") or {}).get("country") != "CH":
            continue
        n, total = groups.get(p.get("kind"), (0, None))
        amount = p.get("amount")
        if amount is not None:
            total = amount if total is None else total + amount
        groups[p.get("kind")] = (n + 1, total)
    return [(k, n, t) for k, (n, t) in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]


WANT = {"fields": want_fields, "by_kind": want_by_kind}


# ---------------------------------------------------------------------------
# Running a query in an engine


def runner(request, engine: str):
    """A function that runs one of engine's queries (its text, {table}
    filled in) and answers its rows as tuples of plain Python values."""
    if engine == "spark":
        spark = request.getfixturevalue("spark")
        return lambda name, text: [tuple(r) for r in spark.sql(text).collect()]
    if engine == "duckdb":
        duck = request.getfixturevalue("duck")
        return lambda name, text: [tuple(r) for r in duck.execute(text).fetchall()]
    if engine == "trino":
        trino = request.getfixturevalue("trino")
        return lambda name, text: [tuple(r) for r in trino.query(text)[1]]
    # PyIceberg: the snippets run one after the other in one namespace, as
    # a user would run them; each leaves a pyarrow Table named like itself.
    namespace = {"catalog": request.getfixturevalue("catalog")}

    def run(name, text):
        exec(compile(text, f"<json_queries pyiceberg {name}>", "exec"), namespace)
        return [tuple(r.values()) for r in namespace[name].to_pylist()]

    return run


def test_json_payloads(request, zombi: Zombi, engine: str, json_events: JsonTable):
    """Each query of the engine answers exactly what the events sent give."""
    s = Story(engine, zombi.shape)
    run = runner(request, engine)
    for name in json_queries.QUERY_NAMES:
        text = json_queries.render(engine, name, json_events.table)
        with s.step(f"query {name}"):
            got = run(name, text)
        want = WANT[name](json_events.sent)
        s.check(want, f"query {name}: the events sent give no rows")
        s.rows_equal(got, want, f"query {name} vs the events sent")
