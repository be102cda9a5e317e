"""The live catalog view (warehouse=live) with Spark and PyIceberg, once
per server shape and engine.

  test_live_before_any_commit  events POSTed, nothing committed: a live
                               query reads them all, the default catalog
                               none
  test_live_time_travel        an older snapshot, an incremental range and
                               a partition filter on the live catalog
  test_live_under_ingest       50 live queries while producers write and
                               the flusher commits every second

The first two run on a second server of the shape that commits only when
asked and whose pin window is a second (conftest.zombi_manual_flush); the
last on the session's server, with the defaults.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
import requests
from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

import engines
from conftest import Unavailable, Zombi
from spark_rows import collect
from story import Story

ENGINES = ["spark", "pyiceberg"]
pytestmark = pytest.mark.parametrize("engine", ENGINES)

PLANS_LATEST = 'zombi_live_plans_total{read="latest"}'
DATA_FILES = 'zombi_planning_files_total{content="data"}'
PLANS = "zombi_planning_plans_total"
HOUR0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)


class Live:
    """One engine's reads of a table through the live catalog and the
    default one."""

    def __init__(self, engine: str, z: Zombi, spark_engine=None):
        self.engine, self.z = engine, z
        if engine == "spark":
            self.spark = engines.spark_live_session(spark_engine, z.url)
        else:
            self.live = z.live_catalog()
            self.default = z.catalog()

    def sequences(self, table: str, live: bool = True, snapshot: int | None = None, since: dt.datetime | None = None,
                  until: dt.datetime | None = None) -> list[int]:  # fmt: skip
        """The sequence column of table (ns.name), sorted: the latest state
        or a snapshot, with an optional event_time range."""
        if self.engine == "spark":
            q = f"SELECT sequence FROM {'zombi_live' if live else 'zombi'}.{table}"
            if snapshot is not None:
                q += f" VERSION AS OF {snapshot}"
            conds = []
            if since is not None:
                conds.append(f"event_time >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}'")
            if until is not None:
                conds.append(f"event_time < TIMESTAMP '{until:%Y-%m-%d %H:%M:%S}'")
            if conds:
                q += " WHERE " + " AND ".join(conds)
            return sorted(r[0] for r in collect(self.spark, q))
        cat = self.live if live else self.default
        ns, name = table.split(".")
        args: dict = {"selected_fields": ("sequence",)}
        if snapshot is not None:
            args["snapshot_id"] = snapshot
        filt = None
        if since is not None:
            filt = GreaterThanOrEqual("event_time", since.isoformat())
        if until is not None:
            lt = LessThan("event_time", until.isoformat())
            filt = lt if filt is None else And(filt, lt)
        if filt is not None:
            args["row_filter"] = filt
        arrow = cat.load_table((ns, name)).scan(**args).to_arrow()
        return sorted(arrow.column("sequence").to_pylist())

    def counts(self, table: str) -> tuple[int, int, int]:
        """count(*), count(distinct sequence) and max(sequence) on the live
        catalog."""
        if self.engine == "spark":
            n, d, m = collect(self.spark, f"SELECT count(*), count(DISTINCT sequence), max(sequence) FROM zombi_live.{table}")[0]
            return n, d, m or 0
        seqs = self.sequences(table)
        return len(seqs), len(set(seqs)), max(seqs, default=0)

    def incremental(self, table: str, start: int, end: int) -> list[int]:
        """The sequences appended after snapshot start up to end (Spark)."""
        df = (
            self.spark.read.format("iceberg")
            .option("start-snapshot-id", str(start))
            .option("end-snapshot-id", str(end))
            .load(f"zombi_live.{table}")
        )
        return sorted(r[0] for r in df.select("sequence").collect())


@pytest.fixture
def live(request, engine: str):
    def make(z: Zombi) -> Live | None:
        if isinstance(z, Unavailable):
            return None
        return Live(engine, z, request.getfixturevalue("spark_engine") if engine == "spark" else None)

    return make


def post(s: Story, z: Zombi, table: str, n: int, start: dt.datetime | None = None) -> int:
    """POSTs n events to table (event times a minute apart from start),
    returns the highest offset acknowledged."""
    recs = []
    for i in range(n):
        r = {"payload": f"e{i}"}
        if start is not None:
            r["timestamp_ms"] = int((start + dt.timedelta(minutes=i)).timestamp() * 1000)
        recs.append(r)
    resp = requests.post(f"{z.url}/tables/{table}/bulk", data=json.dumps({"records": recs}),
                         headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
    s.check(resp.status_code == 202, f"POST {table}/bulk answered {resp.status_code}: {resp.text[:1000]}")
    return max(resp.json()["offsets"])


def flush(s: Story, z: Zombi, table: str) -> int:
    """Commits table's events; returns the new snapshot's ID."""
    r = requests.post(f"{z.url}/tables/{table}/flush", timeout=120)
    s.check(r.status_code == 200, f"POST /tables/{table}/flush answered {r.status_code}: {r.text[:1000]}")
    return r.json()["snapshot_id"]


def test_live_before_any_commit(zombi_manual_flush: Zombi, engine: str, live, ns: str):
    """Nothing is committed (flush interval 1 h): a live query reads every
    event acknowledged, at once; the default catalog reads none."""
    z = zombi_manual_flush
    s = Story(f"{engine} (live)", z.shape)
    reader = live(z)
    table = f"{ns}.events"
    n = 300
    with s.step("POST events"):
        last = post(s, z, table, n)
    with s.step("a live query"):
        before = z.metric(PLANS_LATEST)
        got = reader.sequences(table)
        s.equal(len(got), n, "rows a live query read")
        s.equal(len(set(got)), n, "distinct sequences a live query read")
        s.equal(got[-1], last, "highest sequence a live query read")
        s.check(z.metric(PLANS_LATEST) > before, "the live query made no live plan of the latest state")
    with s.step("the default catalog"):
        s.equal(reader.sequences(table, live=False), [], "rows the default catalog read")
    with s.step("more events, read at once"):
        last = post(s, z, table, 50)
        got = reader.sequences(table)
        s.equal((len(got), len(set(got)), got[-1]), (n + 50, n + 50, last), "rows, distinct rows and last sequence")


def test_live_time_travel(zombi_manual_flush: Zombi, engine: str, live, ns: str):
    """On the live catalog an older snapshot and an incremental range read
    exactly what they name, with no hot tail; an event_time filter prunes
    tail files as it prunes committed ones."""
    z = zombi_manual_flush
    s = Story(f"{engine} (live)", z.shape)
    reader = live(z)
    table = f"{ns}.events"
    with s.step("two commits and a tail"):
        post(s, z, table, 100, HOUR0)  # 10:00-11:39
        first = flush(s, z, table)
        post(s, z, table, 60, HOUR0 + dt.timedelta(hours=2))  # 12:00-12:59
        second = flush(s, z, table)
        post(s, z, table, 120, HOUR0 + dt.timedelta(hours=3))  # 13:00-14:59, not committed
        time.sleep(1.5)  # the pin window: the first snapshot is old now
    with s.step("the latest state"):
        s.equal(len(reader.sequences(table)), 280, "rows of the latest state")
    with s.step("the first snapshot"):
        got = reader.sequences(table, snapshot=first)
        s.equal(got, list(range(1, 101)), "sequences of the first snapshot")
    if engine == "spark":
        with s.step("the second commit, incrementally"):
            s.equal(reader.incremental(table, first, second), list(range(101, 161)), "sequences appended by the second commit")
    with s.step("an event_time filter prunes tail files"):
        plans, files = z.metric(PLANS), z.metric(DATA_FILES)
        got = reader.sequences(table, since=HOUR0 + dt.timedelta(hours=4))
        planned_plans, planned = z.metric(PLANS) - plans, z.metric(DATA_FILES) - files
        s.equal(len(got), 60, "rows from 14:00 (the tail's last hour)")
        s.check(planned_plans >= 1, "the filtered query made no plan")
        s.equal(planned / planned_plans, 1.0, "data files planned per plan for the tail's last hour")
    with s.step("and committed files"):
        plans, files = z.metric(PLANS), z.metric(DATA_FILES)
        got = reader.sequences(table, until=HOUR0 + dt.timedelta(hours=1))
        planned_plans, planned = z.metric(PLANS) - plans, z.metric(DATA_FILES) - files
        s.equal(got, list(range(1, 61)), "sequences before 11:00 (the first commit's first hour)")
        s.equal(planned / max(planned_plans, 1), 1.0, "data files planned per plan for 10:00-11:00")


def test_live_under_ingest(zombi: Zombi, engine: str, live, ns: str):
    """While producers write and the flusher commits every second, 50
    consecutive live queries: each reads every event once and at least
    every event acknowledged before it began, and never fewer than the one
    before; afterwards the committed table holds exactly what the last
    live query read."""
    s = Story(f"{engine} (live)", zombi.shape)
    reader = live(zombi)
    table = f"{ns}.stream"
    acked = [post(s, zombi, table, 1)]
    stop = threading.Event()
    errors: list[str] = []

    def produce():
        session = requests.Session()
        while not stop.is_set():
            recs = [{"payload": f"p{i}"} for i in range(100)]
            r = session.post(f"{zombi.url}/tables/{table}/bulk", json={"records": recs}, timeout=60)
            if r.status_code != 202:
                errors.append(f"{r.status_code}: {r.text[:500]}")
                return
            acked.append(max(r.json()["offsets"]))
            time.sleep(0.05)

    commits = zombi.metric('zombi_flush_cycles_total{outcome="committed"}')
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        with s.step("50 live queries"):
            prev, i = 0, 0
            # At least 50, and on until the flusher has committed twice
            # meanwhile (a fast engine asks 50 times within a second).
            committed = lambda: zombi.metric('zombi_flush_cycles_total{outcome="committed"}') - commits  # noqa: E731
            while i < 50 or (committed() < 2 and i < 500):
                i += 1
                before = acked[-1]
                n, distinct, top = reader.counts(table)
                s.equal(distinct, n, f"query {i}: distinct sequences vs rows")
                s.check(n >= before and top >= before, f"query {i}: {n} rows through {top}; {before} were acknowledged before it")
                s.check(n >= prev, f"query {i}: {n} rows, the query before {prev}")
                prev = n
    finally:
        stop.set()
        producer.join(timeout=60)
    s.check(not errors, f"the producer failed: {errors}")
    s.check(committed() >= 2, f"the flusher committed {committed()} times during {i} live queries, want 2 or more")
    with s.step("the committed table is the last live answer"):
        last_live = reader.sequences(table)
        s.equal(len(last_live), acked[-1], "rows of the last live query (sequences 1.. every one acknowledged)")
        flush(s, zombi, table)
        s.equal(reader.sequences(table, live=False), last_live, "sequences committed vs read by the last live query")
