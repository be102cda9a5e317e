"""Tables from data (docs/ingest.md, Tables from data), once per server
shape: plain JSON objects POSTed to a new table make a typed table that
Spark, DuckDB, Trino and PyIceberg read by column; and 100 producers whose
records gain fields over time, while Spark adds a column of its own, end
with every record stored once and every field in its column."""

from __future__ import annotations

import threading

import requests

from conftest import Zombi
from spark_rows import collect
from story import Story

PRODUCER = "zombi ingest"

# The rows of the first write, and what each engine must read back.
ROWS = [
    {"uid": 1, "action": "click", "price": 2.5, "ctx": {"ip": "10.0.0.1", "ua": "curl"}, "tags": ["a", "b"]},
    {"uid": 2, "action": "view", "price": 3, "ctx": {"ip": "10.0.0.2"}},
    {"uid": 3, "action": "buy", "ok": True, "tags": []},
]


def expected() -> list[tuple]:
    """(uid, action, price, ctx.ip, ok) of ROWS, in order."""
    return [(r["uid"], r["action"], None if "price" not in r else float(r["price"]), (r.get("ctx") or {}).get("ip"),
             r.get("ok")) for r in ROWS]  # fmt: skip


def test_inferred_table_read_by_every_engine(zombi: Zombi, spark, duck, trino, catalog, ns: str):
    s = Story(PRODUCER, zombi.shape)
    table = f"{ns}.clicks"
    with s.step("the first write makes the table"):
        r = requests.post(f"{zombi.url}/tables/{table}/bulk", json=ROWS, timeout=60)
        s.equal(r.status_code, 202, f"POST bulk: {r.text[:500]}")
        offsets = r.json()["offsets"]
        meta = zombi.rest_table(ns, "clicks")["metadata"]
        schema = next(x for x in meta["schemas"] if x["schema-id"] == meta["current-schema-id"])
        types = {f["name"]: f["type"] if isinstance(f["type"], str) else f["type"]["type"] for f in schema["fields"]}
        s.equal(types, {"_zombi_offset": "long", "_zombi_ingest_time": "timestamptz", "uid": "long", "action": "string",
                        "price": "double", "ctx": "struct", "tags": "list", "ok": "boolean"}, "column types")  # fmt: skip
        r = requests.post(f"{zombi.url}/tables/{table}/flush", timeout=120)
        s.equal(r.status_code, 200, f"flush: {r.text[:500]}")

    want = expected()
    Story("spark", zombi.shape).equal(
        collect(spark, f"SELECT uid, action, price, ctx.ip, ok FROM zombi.{table} ORDER BY _zombi_offset"), want,
        "Spark's rows")
    Story("spark", zombi.shape).equal(
        collect(spark, f"SELECT _zombi_offset FROM zombi.{table} ORDER BY _zombi_offset"), [(o,) for o in offsets],
        "Spark's _zombi_offset, the offsets the write answered")
    Story("duckdb", zombi.shape).equal(
        [tuple(x) for x in duck.execute(
            f"SELECT uid, action, price, ctx.ip, ok FROM zombi.{table} ORDER BY _zombi_offset").fetchall()],
        want, "DuckDB's rows")  # fmt: skip
    Story("trino", zombi.shape).equal(
        [tuple(x) for x in trino.query(f"SELECT uid, action, price, ctx.ip, ok FROM zombi.{table} ORDER BY _zombi_offset")[1]],
        want, "Trino's rows")  # fmt: skip
    arrow = catalog.load_table((ns, "clicks")).scan().to_arrow().sort_by("_zombi_offset")
    got = [(r["uid"], r["action"], r["price"], (r["ctx"] or {}).get("ip"), r["ok"]) for r in arrow.to_pylist()]
    Story("pyiceberg", zombi.shape).equal(got, want, "PyIceberg's rows")


PRODUCERS = 100
ROUNDS = 4  # each round's records carry one more field: f1, f2, ...
PER_ROUND = 3


def record(p: int, rnd: int, i: int) -> dict:
    r = {"producer": p, "n": rnd * PER_ROUND + i}
    for k in range(1, rnd + 1):
        r[f"f{k}"] = f"p{p}-r{rnd}-f{k}"
    return r


def test_producers_evolve_with_spark_alter(zombi: Zombi, spark, ns: str):
    """100 producers write rounds of records, each round with one more
    field; halfway through Spark adds a column of its own. Every record is
    stored once with every field in its column, and Spark's column is
    there."""
    s = Story(PRODUCER, zombi.shape)
    table = f"{ns}.grow"
    r = requests.post(f"{zombi.url}/tables/{table}", json=record(0, 0, -1) | {"n": -1}, timeout=60)
    s.equal(r.status_code, 202, f"the first write: {r.text[:500]}")
    errors: list[str] = []
    halfway = threading.Barrier(PRODUCERS + 1)

    def produce(p: int) -> None:
        sess = requests.Session()
        for rnd in range(ROUNDS):
            if rnd == ROUNDS // 2:
                halfway.wait(timeout=300)
            body = [record(p, rnd, i) for i in range(PER_ROUND)]
            try:
                resp = sess.post(f"{zombi.url}/tables/{table}/bulk", json=body, timeout=120)
            except requests.RequestException as e:
                errors.append(f"producer {p} round {rnd}: {e}")
                return
            if resp.status_code != 202:
                errors.append(f"producer {p} round {rnd}: {resp.status_code} {resp.text[:300]}")

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(PRODUCERS)]
    for t in threads:
        t.start()
    with s.step("Spark adds a column while the producers write"):
        halfway.wait(timeout=300)
        # A schema change that loses to a concurrent one (a producer's new
        # field) fails with CommitFailedException, as Iceberg makes every
        # client's do, and is tried again, as a user would.
        for attempt in range(10):
            try:
                spark.sql(f"ALTER TABLE zombi.{table} ADD COLUMN spark_note string")
                break
            except Exception as e:  # py4j's error, whose text names the Java exception
                s.check("CommitFailedException" in str(e), f"ALTER TABLE failed otherwise: {str(e)[:600]}")
        else:
            raise AssertionError(f"{s.where()}: ALTER TABLE lost 10 times in a row")
    for t in threads:
        t.join(timeout=600)
    s.equal(errors, [], "refused or failed writes")

    with s.step("every record once, every field in its column"):
        r = requests.post(f"{zombi.url}/tables/{table}/flush", timeout=120)
        s.equal(r.status_code, 200, f"flush: {r.text[:500]}")
        fields = ", ".join(f"f{k}" for k in range(1, ROUNDS))
        rows = collect(spark, f"SELECT producer, n, {fields}, spark_note FROM zombi.{table} WHERE n >= 0")
        s.equal(len(rows), PRODUCERS * ROUNDS * PER_ROUND, "records stored")
        s.equal(len({(r[0], r[1]) for r in rows}), len(rows), "distinct (producer, n)")
        bad = []
        for row in rows:
            p, n = row[0], row[1]
            want = record(p, n // PER_ROUND, n % PER_ROUND)
            got = {f"f{k}": row[1 + k] for k in range(1, ROUNDS) if row[1 + k] is not None}
            if got != {k: v for k, v in want.items() if k.startswith("f")} or row[-1] is not None:
                bad.append((row, want))
        s.equal(bad[:5], [], "records whose fields are not in their columns (first 5)")
