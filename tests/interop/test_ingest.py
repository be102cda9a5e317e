"""Events and rows written through zombi's ingest API, flushed to Iceberg,
read by Spark, DuckDB, Trino and PyIceberg; once per server shape and per
engine.

  test_ingest_raw_events     events POSTed (single, bulk, NDJSON, retries)
                             to an auto-created event table
  test_ingest_typed_rows     rows POSTed to a typed table Spark created
  test_ingest_added_column   Spark adds a column; producers send it at once
  test_compaction_while_querying
                             the engine queries an ingest table over and
                             over while zombi compacts it

The producer side of the first three is done once per shape (module-scoped
fixtures); each engine then reads the result in its own test, so the
engine summary counts every engine's scenarios. Every engine must return
exactly the rows zombi acknowledged: values, nulls, and nothing else (no
rejected or duplicate write). Every assertion names the engine, the shape
and the step.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

import engines
from conftest import Unavailable, Zombi
from readers import DuckDBReader, PyIcebergReader, Reader, SparkReader, TrinoReader, iso_of
from story import Story

ENGINES = ["spark", "duckdb", "trino", "pyiceberg"]
pytestmark = pytest.mark.parametrize("engine", ENGINES)

PRODUCER = "zombi ingest"  # the engine named by failures of the producer side

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
BASE_US = 1709251200 * 1_000_000  # 2024-03-01T00:00:00Z
HOUR_US = 3600 * 1_000_000
LONG_INTERVAL = "3600000"  # zombi.flush.interval-ms: only explicit flushes


@pytest.fixture
def reader(request, zombi: Zombi, engine: str) -> Reader | None:
    """The engine under test, pointed at this test's server."""
    if isinstance(zombi, Unavailable):
        return None
    if engine == "spark":
        return SparkReader(request.getfixturevalue("spark"))
    if engine == "duckdb":
        return DuckDBReader(request.getfixturevalue("duck"))
    if engine == "trino":
        return TrinoReader(request.getfixturevalue("trino"))
    return PyIcebergReader(request.getfixturevalue("catalog"))


# ---------------------------------------------------------------------------
# Producer helpers


def post(s: Story, url: str, body: bytes | str, ctype: str = "application/json", want: int = 202, headers=None) -> dict:
    if isinstance(body, str):
        body = body.encode()
    h = {"Content-Type": ctype, **(headers or {})}
    r = requests.post(url, data=body, headers=h, timeout=60)
    s.check(r.status_code == want, f"POST {url} answered {r.status_code}, want {want}: {r.text[:2000]}")
    return r.json()


def flush(s: Story, z: Zombi, table: str) -> dict:
    r = requests.post(f"{z.url}/tables/{table}/flush", timeout=120)
    s.check(r.status_code == 200, f"POST /tables/{table}/flush answered {r.status_code}: {r.text[:2000]}")
    return r.json()


def watermark(z: Zombi, table: str) -> dict:
    r = requests.get(f"{z.url}/tables/{table}/watermark", timeout=30)
    r.raise_for_status()
    return r.json()


def micros_of(t: dt.datetime) -> int:
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def now_us() -> int:
    return time.time_ns() // 1000


def module_ns(prefix: str) -> str:
    """A namespace name for a module-scoped fixture (the ns fixture is per test)."""
    return f"{prefix}_{secrets.token_hex(3)}"


# ---------------------------------------------------------------------------
# Event table: envelopes as producers send them, and the rows they become

RAW_COLUMNS = ["sequence", "table", "partition", "payload", "event_time", "idempotency_key", "ingest_time"]
RAW_READ = [("v", "sequence"), ("v", "table"), ("v", "partition"), ("hex", "payload"),
            ("us", "event_time"), ("v", "idempotency_key"), ("us", "ingest_time")]  # fmt: skip
RAW_EVENT_START_US = BASE_US + 5 * 60 * 1_000_000  # 00:05
RAW_EVENT_STEP_MS = 137_000  # 160 events over about six hours


@dataclass
class Envelope:
    """One event as sent (JSON text of its members) and as stored."""

    text: str  # the envelope object, written by hand so its payload is sent as-is
    partition: int
    payload: bytes  # what the payload column must hold
    event_us: int | None  # None: the server's time
    key: str | None


def raw_envelope(i: int, key_in_body: bool = True) -> Envelope:
    """Event i: four payload forms, partitions 0..3 (0 by default), an
    idempotency key on every fifth. A JSON payload is stored as its text
    without insignificant whitespace, numbers and escapes as written."""
    kind = i % 4
    if kind == 0:
        text = f"event {i} – grüße"
        member, stored = '"payload": ' + json.dumps(text, ensure_ascii=False), text.encode()
    elif kind == 1:
        member = f'"payload": {{ "n": {i}, "tags": [ "a", "b" ], "ok": true, "x": 1.50, "e": 2E+3, "q": "caf\\u00e9\\n" }}'
        stored = f'{{"n":{i},"tags":["a","b"],"ok":true,"x":1.50,"e":2E+3,"q":"caf\\u00e9\\n"}}'.encode()
    elif kind == 2:
        raw = bytes([i % 256, 0, 255, 10, 13])
        member, stored = f'"payload_base64": "{base64.b64encode(raw).decode()}"', raw
    else:
        member, stored = f'"payload": [ {i}, null, "s" ]', f'[{i},null,"s"]'.encode()
    members = [member]
    partition = 0 if i % 8 == 0 else i % 4
    if i % 8 != 0:
        members.append(f'"partition": {partition}')
    ms = RAW_EVENT_START_US // 1000 + i * RAW_EVENT_STEP_MS
    members.append(f'"timestamp_ms": {ms}')
    key = f"k-{i}" if i % 5 == 0 else None
    if key and key_in_body:
        members.append(f'"idempotency_key": "{key}"')
    return Envelope("{" + ", ".join(members) + "}", partition, stored, ms * 1000, key)


@dataclass
class RawTable:
    table: str  # ns.name
    rows: dict[int, tuple]  # sequence -> (sequence, table, partition, payload hex, event_us | None, key)
    window: tuple[int, int]  # every ingest_time (and server event time) is within, in us


@pytest.fixture(scope="module")
def raw_events(zombi_server) -> RawTable | None:
    """Events POSTed to a new event table in every form the API takes,
    then flushed."""
    z = zombi_server
    if isinstance(z, Unavailable):
        return None
    s = Story(PRODUCER, z.shape)
    table = f"{module_ns('ingest_raw')}.events"
    url = f"{z.url}/tables/{table}"
    rows: dict[int, tuple] = {}

    def accept(offset: int, env: Envelope):
        s.check(offset not in rows, f"offset {offset} handed out twice")
        rows[offset] = (offset, table, env.partition, env.payload.hex().upper(), env.event_us, env.key)

    envs = {i: raw_envelope(i) for i in range(161)}
    start = now_us()
    with s.step("POST single events (auto-creates the table)"):
        for i in range(30):
            env, headers = envs[i], None
            if i == 10:  # the key as a header instead of in the envelope
                env = raw_envelope(i, key_in_body=False)
                env.key = "hdr-10"
                headers = {"Idempotency-Key": "hdr-10"}
            res = post(s, url, env.text, headers=headers)
            s.equal(res.get("partition"), env.partition, f"partition in the answer for event {i}")
            s.equal(res.get("table"), table, f"table in the answer for event {i}")
            accept(res["offset"], env)
        for payload in ("no time A", "no time B"):
            res = post(s, url, json.dumps({"payload": payload, "partition": 1}))
            accept(res["offset"], Envelope("", 1, payload.encode(), None, None))

    with s.step('POST bulk {"records": [...]}'):
        for lo, hi in ((30, 65), (65, 100)):
            body = '{"records": [' + ", ".join(envs[i].text for i in range(lo, hi)) + "]}"
            res = post(s, f"{url}/bulk", body)
            s.equal(res.get("count"), hi - lo, "count in the bulk answer")
            for i, off in zip(range(lo, hi), res["offsets"]):
                accept(off, envs[i])

    with s.step("POST bulk NDJSON"):
        body = "\n".join(envs[i].text for i in range(100, 160)) + "\n"
        res = post(s, f"{url}/bulk", body, ctype="application/x-ndjson")
        for i, off in zip(range(100, 160), res["offsets"]):
            accept(off, envs[i])

    with s.step("retries with an idempotency key store nothing"):
        first5 = offset_of_key(rows, "k-5")
        retry = json.dumps({"payload": "a different payload", "idempotency_key": "k-5", "timestamp_ms": 1})
        res = post(s, url, retry)
        s.equal((res.get("offset"), res.get("duplicate")), (first5, True), "answer to a retried single event")
        res = post(s, url, '{"payload": "other"}', headers={"Idempotency-Key": "hdr-10"})
        s.equal((res.get("offset"), res.get("duplicate")), (offset_of_key(rows, "hdr-10"), True), "answer to a retried header key")
        body = '{"records": [' + json.dumps({"payload": "changed", "idempotency_key": "k-45"}) + ", " + envs[160].text + "]}"
        res = post(s, f"{url}/bulk", body)
        s.equal(res.get("duplicates"), 1, f"duplicates in the bulk answer {res}")
        s.equal(res["offsets"][0], offset_of_key(rows, "k-45"), "offset answered for the retried record")
        accept(res["offsets"][1], envs[160])

    with s.step("a bulk request with one bad record stores nothing"):
        body = '{"records": [' + json.dumps({"payload": "never stored", "timestamp_ms": 5}) + ', {"payload": "x", "partition": -1}]}'
        r = requests.post(f"{url}/bulk", data=body, headers={"Content-Type": "application/json"}, timeout=60)
        s.equal(r.status_code, 400, f"status of a bulk write with a bad record ({r.text[:500]})")
        bad = r.json()["error"].get("records", [])
        s.equal([(b.get("index"), b.get("field")) for b in bad], [(1, "partition")], "bad records the error lists")

    with s.step("flush"):
        res = flush(s, z, table)
        high = max(rows)
        s.check(res["watermark"] >= high, f"flush answered watermark {res['watermark']}, below the last offset {high}: {res}")
        w = watermark(z, table)
        s.equal(w["committed"], w["high"], f"committed vs high watermark after the flush ({w})")
    return RawTable(table, rows, (start - 2_000_000, now_us() + 2_000_000))


def offset_of_key(rows: dict[int, tuple], key: str) -> int:
    return next(seq for seq, r in rows.items() if r[5] == key)


def test_ingest_raw_events(zombi: Zombi, engine: str, reader: Reader, raw_events: RawTable):
    """Every acknowledged event exactly once, as sent; an hour of
    event_time (the partition transform) reads exactly that hour."""
    s = Story(engine, zombi.shape)
    t = raw_events.table
    lo, hi = raw_events.window

    with s.step("columns of the event table"):
        s.equal(reader.columns(t), RAW_COLUMNS, "columns")

    with s.step("read every event"):
        got = reader.rows(t, RAW_READ)
        want, stripped = [], []
        for row in got:
            seq, ingest_us = row[0], row[6]
            s.check(ingest_us is not None and lo <= ingest_us <= hi,
                    f"event {seq}: ingest_time {ingest_us} outside the time of the test [{lo}, {hi}]")  # fmt: skip
            model = raw_events.rows.get(seq)
            if model is not None and model[4] is None:  # the server's time
                s.check(row[4] is not None and lo <= row[4] <= hi,
                        f"event {seq} sent without a time: event_time {row[4]} outside [{lo}, {hi}]")  # fmt: skip
                model = model[:4] + (row[4],) + model[5:]
            stripped.append(row[:6])
            if model is not None:
                want.append(model)
        s.sets_equal([r[0] for r in got], raw_events.rows, "sequences read vs acknowledged")
        s.rows_equal(stripped, want, "events read vs sent")

    with s.step("filter on one hour of event_time"):
        start = RAW_EVENT_START_US - 5 * 60 * 1_000_000 + 2 * HOUR_US  # 02:00
        got = reader.rows(t, RAW_READ[:6], where=("range", "event_time", start, start + HOUR_US))
        want = sorted(r for r in raw_events.rows.values() if r[4] is not None and start <= r[4] < start + HOUR_US)
        s.check(want, "the hour holds no event of the model")
        s.rows_equal(got, want, f"events from {iso_of(start)} for one hour")


# ---------------------------------------------------------------------------
# Typed table created by Spark

TYPED_DDL = (
    "id BIGINT NOT NULL, ts TIMESTAMP, local_ts TIMESTAMP_NTZ, day DATE, category STRING, amount DECIMAL(10,2), "
    "qty INT, price DOUBLE, paid BOOLEAN, tags ARRAY<STRING>, address STRUCT<city: STRING, zip: INT>"
)
TYPED_COLUMNS = ["id", "ts", "local_ts", "day", "category", "amount", "qty", "price", "paid", "tags", "address"]
TYPED_READ = [("v", "id"), ("us", "ts"), ("us", "local_ts"), ("text", "day"), ("v", "category"), ("text", "amount"),
              ("v", "qty"), ("v", "price"), ("v", "paid"), ("list", "tags"), ("struct", "address")]  # fmt: skip
TYPED_N = 120
# Partition values that a data file's path must escape (Iceberg writes
# URL-encoded partition directories): non-ASCII, a space, a slash.
CATS = ["alpha", "grüße", "a b/c"]


def typed_row(i: int) -> tuple[dict, tuple]:
    """Row i as a producer sends it (every JSON form the conversion takes,
    explicit nulls and absent fields) and as every engine must read it."""
    row: dict = {"id": i}
    base = BASE_US + i * 53 * 60 * 1_000_000 + i  # about 4.4 days of rows
    t = EPOCH + dt.timedelta(microseconds=base)
    ts = None
    match i % 5:
        case 0:
            row["ts"], ts = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), base
        case 1:
            row["ts"], ts = (t + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00"), base
        case 2:
            row["ts"], ts = base // 1000, base // 1000 * 1000  # epoch milliseconds
        case 3:
            row["ts"] = None
    local = None
    if i % 3:
        lt = dt.datetime(2024, 5, 1 + i % 28, i % 24, 30, 15, i * 7919 % 1_000_000)
        row["local_ts"], local = lt.strftime("%Y-%m-%dT%H:%M:%S.%f"), micros_of(lt.replace(tzinfo=dt.timezone.utc))
    day = None
    if i % 11:
        d = dt.date(2024, 3, 1) + dt.timedelta(days=i)
        row["day"], day = ((d - dt.date(1970, 1, 1)).days if i % 4 == 0 else d.isoformat()), d.isoformat()
    category = None if i % 7 == 0 else CATS[i % 3]
    row["category"] = category
    amount = None
    match i % 4:
        case 0:
            row["amount"], amount = f"{i}.{i % 100:02d}", f"{i}.{i % 100:02d}"
        case 1:
            row["amount"], amount = i + 0.5, f"{i}.50"
        case 2:
            row["amount"], amount = "-0.01", "-0.01"
    if i % 6 == 0:
        row["qty"], qty = str(-i), -i  # a quoted integer
    else:
        row["qty"], qty = i * 3, i * 3
    price = None
    if i % 9:
        row["price"], price = i / 8 - 3.5, i / 8 - 3.5
    row["paid"] = paid = i % 2 == 0
    tags = None
    if i % 5 == 0:
        row["tags"], tags = [], []
    elif i % 5 != 1:
        row["tags"], tags = [f"t{i}", "x"], [f"t{i}", "x"]
    address = None
    if i % 8 == 1:
        row["address"], address = {"zip": 10000 + i}, (None, 10000 + i)
    elif i % 4:
        row["address"], address = {"city": f"city-{i % 5}", "zip": 10000 + i}, (f"city-{i % 5}", 10000 + i)
    return row, (i, ts, local, day, category, amount, qty, price, paid, tags, address)


@dataclass
class TypedTable:
    table: str
    rows: dict[int, tuple]  # id -> expected row (TYPED_READ order)


@pytest.fixture(scope="module")
def typed_rows(zombi_server, spark_engine) -> TypedTable | None:
    """A table Spark creates (partitioned by id bucket and category), rows
    POSTed to it as a JSON array, {"records": [...]}, NDJSON and one by
    one, then flushed."""
    z = zombi_server
    if isinstance(z, Unavailable):
        return None
    ns = module_ns("ingest_typed")
    table = f"{ns}.orders"
    url = f"{z.url}/tables/{table}"
    spark = engines.spark_session(spark_engine, z.url)
    s = Story("spark", z.shape)
    with s.step("CREATE TABLE"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE zombi.{table} ({TYPED_DDL}) USING iceberg PARTITIONED BY (bucket(4, id), category) "
            f"TBLPROPERTIES ('format-version' = '2', 'zombi.flush.interval-ms' = '{LONG_INTERVAL}')"
        )

    s = Story(PRODUCER, z.shape)
    sent = {i: typed_row(i) for i in range(TYPED_N)}
    with s.step("POST a JSON array"):
        res = post(s, f"{url}/bulk", json.dumps([sent[i][0] for i in range(0, 40)]))
        s.equal(res.get("count"), 40, "count in the bulk answer")
    with s.step('POST {"records": [...]}'):
        res = post(s, f"{url}/bulk", json.dumps({"records": [sent[i][0] for i in range(40, 80)]}))
        s.equal(res.get("count"), 40, "count in the bulk answer")
    with s.step("POST NDJSON"):
        body = "".join(json.dumps(sent[i][0]) + "\n" for i in range(80, 110))
        res = post(s, f"{url}/bulk", body, ctype="application/x-ndjson")
        s.equal(res.get("count"), 30, "count in the bulk answer")
    with s.step("POST single rows"):
        for i in range(110, TYPED_N):
            post(s, url, json.dumps(sent[i][0]))

    with s.step("rejected writes store nothing"):
        bad = [typed_row(500)[0], {**typed_row(501)[0], "qty": "seven"}]
        r = requests.post(f"{url}/bulk", json=bad, timeout=60)
        s.equal(r.status_code, 400, f"status of a bulk write with a bad qty ({r.text[:500]})")
        recs = r.json()["error"].get("records", [])
        s.equal([(x.get("index"), x.get("field")) for x in recs], [(1, "qty")], "bad records the error lists")
        for name, row in (("an unknown field", {"id": 502, "colour": "red"}), ("no id (required)", {"category": "alpha"})):
            r = requests.post(url, json=row, timeout=60)
            s.equal(r.status_code, 400, f"status of a row with {name} ({r.text[:500]})")

    with s.step("flush"):
        res = flush(s, z, table)
        s.equal(res["rows"], TYPED_N, f"rows the flush committed (the table flushes only on request): {res}")
    return TypedTable(table, {i: v[1] for i, v in sent.items()})


def test_ingest_typed_rows(zombi: Zombi, engine: str, reader: Reader, typed_rows: TypedTable):
    """Every POSTed row exactly once with every value, null and absent
    field as sent; filters on the partition source columns (the id bucket,
    the category) and on a day of ts read exactly their rows."""
    s = Story(engine, zombi.shape)
    t = typed_rows.table
    want = [typed_rows.rows[i] for i in sorted(typed_rows.rows)]

    with s.step("columns"):
        s.equal(reader.columns(t), TYPED_COLUMNS, "columns")

    with s.step("read every row"):
        s.rows_equal(reader.rows(t, TYPED_READ), want, "rows read vs POSTed")

    with s.step("filter id = n (bucket partition)"):
        for n in (0, 7, 63, 119):
            s.rows_equal(reader.rows(t, TYPED_READ, where=("eq", "id", n)), [typed_rows.rows[n]], f"rows with id = {n}")

    with s.step("filter category = c (identity partition)"):
        for c in CATS:
            got = reader.rows(t, TYPED_READ, where=("eq", "category", c))
            s.rows_equal(got, [r for r in want if r[4] == c], f"rows with category = {c!r}")

    with s.step("filter one day of ts"):
        lo = BASE_US + 2 * 24 * HOUR_US
        got = reader.rows(t, TYPED_READ, where=("range", "ts", lo, lo + 24 * HOUR_US))
        day = [r for r in want if r[1] is not None and lo <= r[1] < lo + 24 * HOUR_US]
        s.check(day, "the day holds no row of the model")
        s.rows_equal(got, day, f"rows of {iso_of(lo)[:10]}")


# ---------------------------------------------------------------------------
# A column added by Spark while producers write

EVOLVE_READ = [("v", "id"), ("us", "ts"), ("v", "category"), ("v", "note")]


def evolve_row(i: int, note: bool) -> tuple[dict, tuple]:
    ts = BASE_US + i * 17 * 60 * 1_000_000
    row = {"id": i, "ts": iso_of(ts), "category": CATS[i % 3]}
    value = None
    if note and i % 4:
        value = f"note-{i}"
        row["note"] = value
    elif note:
        row["note"] = None
    return row, (i, ts, CATS[i % 3], value)


@dataclass
class EvolvedTable:
    table: str
    rows: dict[int, tuple]


@pytest.fixture(scope="module")
def added_column(zombi_server, spark_engine) -> EvolvedTable | None:
    """Spark creates a table; producers write; Spark adds column note
    while rows written without it are still unflushed; producers send note
    right away; one flush commits both."""
    z = zombi_server
    if isinstance(z, Unavailable):
        return None
    ns = module_ns("ingest_evolve")
    table = f"{ns}.events"
    url = f"{z.url}/tables/{table}"
    spark = engines.spark_session(spark_engine, z.url)
    sp, s = Story("spark", z.shape), Story(PRODUCER, z.shape)
    rows: dict[int, tuple] = {}

    with sp.step("CREATE TABLE"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(
            f"CREATE TABLE zombi.{table} (id BIGINT NOT NULL, ts TIMESTAMP, category STRING) USING iceberg "
            f"PARTITIONED BY (days(ts)) TBLPROPERTIES ('format-version' = '2', 'zombi.flush.interval-ms' = '{LONG_INTERVAL}')"
        )
    with s.step("POST rows and flush"):
        sent = [evolve_row(i, False) for i in range(50)]
        post(s, f"{url}/bulk", json.dumps([r for r, _ in sent]))
        rows.update((m[0], m) for _, m in sent)
        s.equal(flush(s, z, table)["rows"], 50, "rows the first flush committed")
    with s.step("note is unknown before the ALTER"):
        r = requests.post(url, json=evolve_row(50, True)[0], timeout=60)
        s.equal(r.status_code, 400, f"status of a row with note before the column exists ({r.text[:500]})")
        s.check("note" in r.text, f"the error does not name the field note: {r.text[:500]}")
    with s.step("POST rows that stay unflushed"):
        sent = [evolve_row(i, False) for i in range(50, 80)]
        post(s, f"{url}/bulk", json.dumps([r for r, _ in sent]))
        rows.update((m[0], m) for _, m in sent)
        w = watermark(z, table)
        s.check(w["committed"] < w["high"], f"rows 50..79 were flushed before the ALTER: {w}")

    with sp.step("ALTER TABLE ADD COLUMN note"):
        spark.sql(f"ALTER TABLE zombi.{table} ADD COLUMN note STRING")

    with s.step("POST rows with note right after the ALTER"):
        sent = [evolve_row(i, True) for i in range(80, 100)]
        post(s, f"{url}/bulk", json.dumps([r for r, _ in sent]))
        for i in range(100, 120):
            row, m = evolve_row(i, True)
            post(s, url, json.dumps(row))
            sent.append((row, m))
        rows.update((m[0], m) for _, m in sent)
    with s.step("flush"):
        res = flush(s, z, table)
        s.equal(res["rows"], 70, f"rows the second flush committed (30 without note, 40 with): {res}")
        w = watermark(z, table)
        s.equal(w["committed"], w["high"], f"committed vs high watermark after the flush ({w})")
    return EvolvedTable(table, rows)


def test_ingest_added_column(zombi: Zombi, engine: str, reader: Reader, added_column: EvolvedTable):
    """The engine sees Spark's new column: null in rows written before it
    existed (flushed before or after the ALTER), the sent value after."""
    s = Story(engine, zombi.shape)
    t = added_column.table
    with s.step("columns after ADD COLUMN"):
        s.equal(reader.columns(t), ["id", "ts", "category", "note"], "columns")
    with s.step("read every row"):
        want = [added_column.rows[i] for i in sorted(added_column.rows)]
        s.rows_equal(reader.rows(t, EVOLVE_READ), want, "rows read vs POSTed (note null before the ALTER)")


# ---------------------------------------------------------------------------
# Compaction while the engine queries

COMPACT_READ = [("v", "sequence"), ("v", "partition"), ("hex", "payload"), ("us", "event_time")]
COMPACT_ROUNDS = 6  # flushes before compaction: two small files each (two hours)
COMPACT_ROUND_EVENTS = 40
COMPACT_AFTER = 2  # answers wanted once compaction is done


@dataclass
class Answer:
    start: float
    end: float
    snapshot_before: int | None  # the catalog's current snapshot around the queries
    snapshot_after: int | None
    aggregates: tuple = ()
    rows: list = field(default_factory=list)
    files: int = 0

    def snapshot(self) -> int | None:
        """The snapshot the engine read, when the catalog did not change
        while it ran (the engines load the table when a query starts)."""
        return self.snapshot_before if self.snapshot_before == self.snapshot_after else None


def compact_events(start: int, n: int) -> list[tuple[dict, tuple]]:
    """Events start..start+n-1, alternating between two hours."""
    out = []
    for i in range(start, start + n):
        ms = BASE_US // 1000 + (i % 2) * 3_600_000 + i * 1000
        payload = f"compact-{i}"
        out.append(({"payload": payload, "partition": i % 3, "timestamp_ms": ms}, (i % 3, payload.encode().hex().upper(), ms * 1000)))
    return out


def test_compaction_while_querying(zombi: Zombi, engine: str, reader: Reader, ns: str):
    """Small flushes, then zombi compacts the table while the engine
    queries it in a loop: every answer (rows, and aggregates Spark may take
    from file statistics) is the same before, during and after the replace
    commit; answers on either snapshot read that snapshot's files; the old
    snapshot stays readable; ingest goes on after compaction."""
    s = Story(engine, zombi.shape)
    table = f"{ns}.events"
    url = f"{zombi.url}/tables/{table}"
    want: dict[int, tuple] = {}

    def send(events):
        res = post(s, f"{url}/bulk", json.dumps({"records": [e for e, _ in events]}))
        for off, (_, m) in zip(res["offsets"], events):
            want[off] = (off, *m)

    def snapshot_id() -> int | None:
        return zombi.rest_table(ns, "events")["metadata"].get("current-snapshot-id")

    def snapshot(sid: int) -> dict:
        meta = zombi.rest_table(ns, "events")["metadata"]
        return next(x for x in meta["snapshots"] if x["snapshot-id"] == sid)

    with s.step("small flushes"):
        for r in range(COMPACT_ROUNDS):
            send(compact_events(r * COMPACT_ROUND_EVENTS, COMPACT_ROUND_EVENTS))
            flush(s, zombi, table)
        before = snapshot_id()
        files_before = int(snapshot(before)["summary"]["total-data-files"])
        s.check(files_before >= 2 * COMPACT_ROUNDS, f"{files_before} data files after {COMPACT_ROUNDS} flushes")
        rows = [want[k] for k in sorted(want)]
        aggregates = (len(rows), rows[0][0], rows[-1][0], min(r[3] for r in rows), max(r[3] for r in rows))

    with s.step("the engine reads the flushed table"):
        got, files = reader.rows_and_files(table, COMPACT_READ)
        s.rows_equal(got, rows, "rows before compaction")
        s.equal(files, files_before, "data files the engine read before compaction")

    answers: list[Answer] = []
    errors: list[str] = []
    compacted_at: list[float] = []  # when /compact answered
    stop = threading.Event()

    def query_loop():
        after = 0
        deadline = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < deadline:
            a = Answer(time.monotonic(), 0.0, snapshot_id(), None)
            try:
                a.aggregates = reader.seq_time_aggregates(table, "sequence", "event_time")
                a.rows, a.files = reader.rows_and_files(table, COMPACT_READ)
            except Exception as e:  # reported by the main thread
                errors.append(f"query {len(answers) + 1}: {type(e).__name__}: {str(e)[:2000]}")
                return
            a.end, a.snapshot_after = time.monotonic(), snapshot_id()
            answers.append(a)
            if compacted_at and a.start > compacted_at[0]:
                after += 1
                if after >= COMPACT_AFTER:
                    return

    with s.step("compact while the engine queries"):
        loop = threading.Thread(target=query_loop, name=f"{engine}-queries")
        loop.start()
        try:
            while len(answers) < 2 and loop.is_alive():
                time.sleep(0.02)
            s.check(not errors and len(answers) >= 2, f"queries before compaction failed: {errors}")
            c_start = time.monotonic()
            for attempt in range(20):
                r = requests.post(f"{url}/compact", timeout=300)
                # 409: the maintenance scheduler holds the table's lease.
                if r.status_code != 409:
                    break
                time.sleep(0.25)
            c_end = time.monotonic()
            compacted_at.append(c_end)
            s.check(r.status_code == 200, f"POST /compact answered {r.status_code}: {r.text[:2000]}")
            res = r.json()
            loop.join(timeout=300)
        finally:
            stop.set()
            loop.join()
        s.check(not errors, "a query failed while zombi compacted: " + "; ".join(errors))

    with s.step("the compaction's answer and snapshot"):
        s.equal((res["files_before"], res["rows"]), (files_before, len(rows)), f"files_before and rows in {res}")
        s.check(res["files_after"] < res["files_before"], f"files {res['files_before']} -> {res['files_after']}: {res}")
        after = snapshot_id()
        s.equal(after, res["snapshot_id"], "current snapshot vs the one compaction answered")
        snap = snapshot(after)
        s.equal(snap["summary"]["operation"], "replace", "operation of the compaction's snapshot")
        s.equal(snap.get("parent-snapshot-id"), before, "parent of the compaction's snapshot")
        files_after = int(snap["summary"]["total-data-files"])
        s.equal(files_after, res["files_after"], "total-data-files of the replace snapshot vs files_after")

    with s.step("every answer identical"):
        for n, a in enumerate(answers, 1):
            on = f"answer {n} of {len(answers)} (snapshot {a.snapshot_before} -> {a.snapshot_after})"
            s.equal(a.aggregates, aggregates, f"{on}: count, min/max sequence, min/max event_time")
            s.rows_equal(a.rows, rows, f"{on}: rows")
            files = {before: files_before, after: files_after}.get(a.snapshot())
            if files is not None:
                s.equal(a.files, files, f"{on}: data files the engine read")
        on_before = sum(1 for a in answers if a.snapshot() == before)
        on_after = sum(1 for a in answers if a.snapshot() == after)
        s.check(on_before >= 1 and on_after >= COMPACT_AFTER,
                f"{on_before} answers on the appends' snapshot, {on_after} on the replace snapshot")  # fmt: skip
        during = [n for n, a in enumerate(answers, 1) if a.start < c_end and a.end > c_start]
        s.check(during, f"no query ran while /compact did ({c_end - c_start:.3f}s); answers "
                        f"{[(round(a.start - c_start, 3), round(a.end - c_start, 3)) for a in answers]}")  # fmt: skip
        print(f"{engine}/{zombi.shape}: {len(answers)} answers, {on_before} before, {on_after} after, "
              f"queries {during} overlapped compaction ({c_end - c_start:.3f}s)")  # fmt: skip

    with s.step("time travel to the snapshot before compaction"):
        s.rows_equal(reader.rows(table, COMPACT_READ, snapshot=before), rows, f"rows of snapshot {before}")

    with s.step("ingest after compaction"):
        send(compact_events(1000, COMPACT_ROUND_EVENTS))
        res = flush(s, zombi, table)
        s.check(res["watermark"] >= max(want), f"flush answered watermark {res['watermark']}, below the last offset {max(want)}")
        rows = [want[k] for k in sorted(want)]
        s.rows_equal(reader.rows(table, COMPACT_READ), rows, "rows after compaction and another flush")
