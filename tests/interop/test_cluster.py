"""Spark adds a column through the load balancer of a three-node zombi
cluster while producers write to the table through the same balancer
(issue 14's Spark scenario).

The cluster (conftest's `zombi_cluster`) is three `zombi serve --cluster`
nodes on one Postgres database and one bucket behind HAProxy, round robin.
Spark creates a row table; producer threads POST rows to it, one request
each, through the balancer; Spark runs `ALTER TABLE ... ADD COLUMN extra`
through the balancer, and right after it returns the producers send rows
with `extra`. A node that has not heard of the new column yet refuses such
a row (400, unknown field): every refusal must come within one second of
the ALTER's return, since a committed change reaches every node within a
second (docs/catalog.md). After a flush, Spark reads the table: every
acknowledged row exactly once, `extra` filled in every row sent with it
and null in the others, and nothing refused.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import dataclass

import requests

import engines
from conftest import Cluster
from story import Story

PRODUCERS = 4
PAUSE = 0.005  # seconds between one producer's requests
BEFORE = 2.5  # seconds of rows without extra before the ALTER (over two flush intervals)
AFTER = 4.0  # seconds of rows with extra after it
MAX_REFUSAL = 1.0  # seconds after the ALTER's return within which a row with extra may be refused
FLUSH_WAIT = 60.0  # seconds for every acknowledged row to reach the table


@dataclass
class Write:
    id: int
    extra: bool  # the row carries extra
    sent: float  # time.monotonic() when the request was sent
    answered: float  # ... and when its answer (or error) came
    status: int | None  # None: no HTTP answer
    answer: str

    @property
    def acked(self) -> bool:
        return self.status == 202

    def row(self) -> tuple:
        """(id, v, extra) as the table should hold it."""
        return (self.id, f"v-{self.id}", f"x-{self.id}" if self.extra else None)


class Producers:
    """PRODUCERS threads, each POSTing one row per request to url and
    recording every answer. Rows carry extra once with_extra is set."""

    def __init__(self, url: str):
        self.url = url
        self.with_extra = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.writes: list[Write] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(g,), name=f"producer-{g}") for g in range(PRODUCERS)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def _run(self, g: int) -> None:
        try:
            http = requests.Session()
            i = 0
            while not self.stop.is_set():
                rid = 1 + g + PRODUCERS * i  # unique across producers
                i += 1
                extra = self.with_extra.is_set()
                row = {"id": rid, "v": f"v-{rid}"}
                if extra:
                    row["extra"] = f"x-{rid}"
                sent = time.monotonic()
                try:
                    r = http.post(self.url, json=row, timeout=30)
                    status, answer = r.status_code, r.text[:500]
                except requests.RequestException as e:
                    status, answer = None, f"{type(e).__name__}: {e}"[:500]
                w = Write(rid, extra, sent, time.monotonic(), status, answer)
                with self.lock:
                    self.writes.append(w)
                time.sleep(PAUSE)
        except Exception as e:  # reported by the test
            with self.lock:
                self.errors.append(f"producer {g}: {type(e).__name__}: {e}")


def ingest_counts(node_url: str, ns: str) -> dict[str, float]:
    """zombi_ingest_events_total of the test's table on one node, by outcome."""
    r = requests.get(f"{node_url}/metrics", timeout=30)
    r.raise_for_status()
    out: dict[str, float] = collections.Counter()
    for line in r.text.splitlines():
        if line.startswith("zombi_ingest_events_total{") and f'table="{ns}.t"' in line:
            labels, _, value = line.rpartition(" ")
            outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] += float(value)
    return dict(out)


def node_counts(c: Cluster, ns: str) -> dict[str, dict[str, float]]:
    return {f"n{i + 1}": ingest_counts(z.url, ns) for i, z in enumerate(c.nodes)}


def test_spark_add_column_while_producing(request, zombi_cluster: Cluster):
    c = zombi_cluster
    # Asked for here, not as an argument: without the cluster's environment
    # the test fails before its body runs, and no JVM is started for it.
    spark_engine = request.getfixturevalue("spark_engine")
    s = Story("Spark", f"{c.shape}, {len(c.nodes)} nodes behind haproxy")
    ns = f"cluster_{secrets.token_hex(3)}"
    table = f"zombi.{ns}.t"
    url = f"{c.url}/tables/{ns}.t"
    spark = engines.spark_session(spark_engine, c.url)

    with s.step("CREATE TABLE through the balancer"):
        spark.sql(f"CREATE NAMESPACE zombi.{ns}")
        spark.sql(f"CREATE TABLE {table} (id bigint, v string) USING iceberg")

    with s.step("a row with extra is refused before the ALTER"):
        # On every node (round robin): the column does not exist yet.
        for _ in c.nodes:
            r = requests.post(url, json={"id": 0, "v": "v-0", "extra": "x-0"}, timeout=30)
            s.equal(r.status_code, 400, f"status of a row with extra before the column exists ({r.text[:500]})")
            s.check("extra" in r.text, f"the refusal does not name the field extra: {r.text[:500]}")

    p = Producers(url)
    with s.step("producers write rows without extra"):
        p.start()
        try:
            time.sleep(BEFORE)
            with s.step("ALTER TABLE ADD COLUMN extra through the balancer"):
                alter_start = time.monotonic()
                spark.sql(f"ALTER TABLE {table} ADD COLUMN extra string")
                altered = time.monotonic()
                p.with_extra.set()
            at_alter = node_counts(c, ns)
            time.sleep(AFTER)
        finally:
            p.join()
        s.check(not p.errors, f"producer threads failed: {p.errors}")
        s.check(all(not t.is_alive() for t in p.threads), "producer threads still running after 120 s")

    writes = p.writes
    before = [w for w in writes if not w.extra]
    after = [w for w in writes if w.extra]
    refused_before = [w for w in before if not w.acked]
    refused_after = [w for w in after if not w.acked]
    span = max((w.answered - altered for w in refused_after), default=0.0)
    late = [w for w in refused_after if w.answered - altered >= MAX_REFUSAL]
    print(
        f"\ncluster: ALTER took {altered - alter_start:.3f}s; {len(before)} writes without extra "
        f"({len(refused_before)} refused), {len(after)} with extra ({len(refused_after)} refused, "
        f"the last answered {span:.3f}s after the ALTER returned)"
    )
    for w in refused_after[:10]:
        print(f"  refused id {w.id} sent +{w.sent - altered:.3f}s answered +{w.answered - altered:.3f}s: "
              f"{w.status} {w.answer[:200]}")  # fmt: skip

    with s.step("writes while the column is added"):
        s.check(len(before) >= 50 and len(after) >= 50,
                f"too few writes to show anything: {len(before)} before the ALTER, {len(after)} after")  # fmt: skip
        s.check(not refused_before, f"{len(refused_before)} rows without extra refused, first: "
                f"{[(w.id, w.status, w.answer[:300]) for w in refused_before[:3]]}")  # fmt: skip
        s.check(not late, f"{len(late)} rows with extra refused {MAX_REFUSAL}s or more after the ALTER returned "
                f"(the last +{span:.3f}s), first: "
                f"{[(w.id, round(w.answered - altered, 3), w.status, w.answer[:300]) for w in late[:3]]}")  # fmt: skip
        unexpected = [w for w in refused_after if w.status != 400 or "extra" not in w.answer]
        s.check(not unexpected, f"rows with extra refused for another reason than the unknown column: "
                f"{[(w.id, w.status, w.answer[:300]) for w in unexpected[:3]]}")  # fmt: skip

    acked = {w.id: w for w in writes if w.acked}
    refused = {w.id for w in writes if w.status is not None and 400 <= w.status < 500}
    unknown = {w.id for w in writes if not w.acked and w.id not in refused}  # may or may not be stored

    with s.step("every node took rows with extra"):
        counts = node_counts(c, ns)
        since = {
            node: {k: v - at_alter[node].get(k, 0) for k, v in n.items()} for node, n in counts.items()
        }
        print(f"  by node since the ALTER returned: {since}")
        for node, n in since.items():
            s.check(n.get("accepted", 0) > 0,
                    f"node {node} acknowledged no row after the ALTER (the balancer sent it none?): {since}")  # fmt: skip

    with s.step("flush through the balancer"):
        flush_start = time.monotonic()
        deadline = flush_start + FLUSH_WAIT
        while True:
            # Round robin: one flush per node commits every node's rows.
            for _ in c.nodes:
                r = requests.post(f"{url}/flush", timeout=120)
                s.check(r.status_code == 200, f"POST /tables/{ns}.t/flush answered {r.status_code}: {r.text[:2000]}")
            meta = requests.get(f"{c.url}/v1/namespaces/{ns}/tables/t", timeout=30)
            meta.raise_for_status()
            m = meta.json()["metadata"]
            snap = next((x for x in m.get("snapshots", []) if x["snapshot-id"] == m.get("current-snapshot-id")), None)
            total = int(snap["summary"].get("total-records", 0)) if snap else 0
            if total >= len(acked) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        props = m.get("properties", {})
        for i in range(len(c.nodes)):
            s.check(f"zombi.watermark.n{i + 1}" in props, f"the table has no watermark of node n{i + 1}: {props}")

    with s.step("Spark reads every acknowledged row once"):
        print(f"  flushed in {time.monotonic() - flush_start:.1f}s")
        got = [tuple(r) for r in spark.sql(f"SELECT id, v, extra FROM {table}").collect()]
        times = collections.Counter(r[0] for r in got)
        twice = sorted(i for i, n in times.items() if n > 1)
        missing = sorted(set(acked) - set(times))
        stored_refused = sorted(set(times) & refused)
        never_sent = sorted(set(times) - set(acked) - refused - unknown)
        print(f"  table: {len(got)} rows, {len(acked)} acknowledged, {len(unknown)} without an answer, "
              f"snapshot total-records {total}")  # fmt: skip
        s.check(not (twice or missing or stored_refused or never_sent),
                f"{len(got)} rows read, {len(acked)} acknowledged: {len(missing)} acknowledged missing "
                f"(first {missing[:5]}), {len(twice)} more than once (first {twice[:5]}), "
                f"{len(stored_refused)} refused but stored (first {stored_refused[:5]}), "
                f"{len(never_sent)} never sent (first {never_sent[:5]})")  # fmt: skip

    with s.step("extra is filled from the ALTER on, null before"):
        sent = {w.id: w for w in writes}
        wrong = [(r, sent[r[0]].row()) for r in got if r[0] in sent and r != sent[r[0]].row()]
        s.check(not wrong, f"{len(wrong)} rows differ from what was sent (got, want), first: {wrong[:5]}")
        with_extra = sum(1 for r in got if r[2] is not None)
        s.equal(with_extra, sum(1 for w in acked.values() if w.extra), "rows with extra filled vs acknowledged with extra")
