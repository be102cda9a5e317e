"""Zombi's flusher and PyIceberg writing to one table at the same time.

Producers POST rows to a typed table that PyIceberg created; zombi's
flusher commits them (append snapshots) while PyIceberg appends, adds a
column and deletes rows through the same catalog. Neither side may lose
the other's update: every acknowledged row is in the table once, deleted
rows stay deleted, and rows sent with the new column carry it.
"""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import requests
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, EqualTo, LessThan
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from conftest import Zombi

WHO = "pyiceberg+flusher"


def where(shape: str, step: str) -> str:
    return f"{WHO}/{shape} step '{step}'"


def retry_commit(fn, attempts: int = 50):
    """Runs fn (which reloads the table itself) until it commits: a user's
    retry loop around a 409 caused by a concurrent flush."""
    for i in range(attempts):
        try:
            return fn()
        except CommitFailedException:
            time.sleep(0.05 * (i + 1))
    raise AssertionError(f"no commit after {attempts} conflicts")


def test_flush_interleaved_with_pyiceberg_commits(zombi: Zombi, catalog, ns: str):
    shape = zombi.shape
    ref = f"{ns}.events"
    catalog.create_namespace(ns)
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "src", StringType(), required=False),
    )
    catalog.create_table(f"{ns}.events", schema=schema)

    acked: dict[int, str | None] = {}  # id -> extra, for rows zombi acknowledged
    lock = threading.Lock()
    stop = threading.Event()
    extra_added = threading.Event()
    errors: list[str] = []

    def produce():
        session = requests.Session()
        next_id = 0
        while not stop.is_set():
            with_extra = extra_added.is_set()
            rows = []
            for _ in range(50):
                row = {"id": next_id, "src": "zombi"}
                if with_extra:
                    row["extra"] = f"x{next_id}"
                rows.append(row)
                next_id += 1
            r = session.post(f"{zombi.url}/tables/{ref}/bulk", json=rows, timeout=30)
            if r.status_code != 202:
                errors.append(f"bulk write answered {r.status_code}: {r.text}")
                return
            with lock:
                for row in rows:
                    acked[row["id"]] = row.get("extra")
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        # PyIceberg appends rows with ids far from the producer's.
        py_ids: set[int] = set()
        for batch in range(6):
            ids = list(range(1_000_000 + batch * 10, 1_000_000 + batch * 10 + 10))

            def append(ids=ids):
                t = catalog.load_table(f"{ns}.events")
                t.append(pa.table({"id": pa.array(ids, pa.int64()), "src": ["pyiceberg"] * len(ids)},
                                  schema=t.schema().as_arrow()))

            retry_commit(append)
            py_ids.update(ids)
            time.sleep(0.3)

        # A schema change; producers send the new column from then on.
        def add_column():
            t = catalog.load_table(f"{ns}.events")
            with t.update_schema() as u:
                u.add_column("extra", StringType())

        retry_commit(add_column)
        extra_added.set()
        time.sleep(1.5)

        # Delete half of PyIceberg's rows.
        deleted = {i for i in py_ids if i % 2 == 0}

        def delete():
            t = catalog.load_table(f"{ns}.events")
            t.delete(And(EqualTo("src", "pyiceberg"), LessThan("id", 1_000_030)))

        retry_commit(delete)
        deleted = {i for i in py_ids if i < 1_000_030}
        time.sleep(1.5)
    finally:
        stop.set()
        producer.join()
    assert not errors, where(shape, "produce") + ": " + "; ".join(errors)

    r = requests.post(f"{zombi.url}/tables/{ref}/flush", timeout=120)
    assert r.status_code == 200, where(shape, "final flush") + f": {r.status_code} {r.text}"

    table = catalog.load_table(f"{ns}.events").scan().to_arrow()
    rows = table.to_pylist()
    ids = [row["id"] for row in rows]
    dupes = {i for i in ids if ids.count(i) > 1} if len(ids) != len(set(ids)) else set()
    assert not dupes, where(shape, "scan") + f": ids in the table more than once: {sorted(dupes)[:10]}"
    got = {row["id"]: row for row in rows}

    missing = [i for i in acked if i not in got]
    assert not missing, where(shape, "scan") + f": {len(missing)} acknowledged rows missing, first {sorted(missing)[:10]}"
    wrong_extra = [i for i, extra in acked.items() if got[i].get("extra") != extra]
    assert not wrong_extra, where(shape, "scan") + f": rows with the wrong extra value: {sorted(wrong_extra)[:10]}"
    assert any(extra is not None for extra in acked.values()), where(shape, "produce") + ": no row was sent with the new column"

    kept = py_ids - deleted
    missing_py = kept - got.keys()
    resurrected = deleted & got.keys()
    assert not missing_py, where(shape, "scan") + f": PyIceberg rows lost: {sorted(missing_py)[:10]}"
    assert not resurrected, where(shape, "scan") + f": deleted rows came back: {sorted(resurrected)[:10]}"
    assert len(got) == len(acked) + len(kept), where(shape, "scan") + f": {len(got)} rows, want {len(acked)} + {len(kept)}"
