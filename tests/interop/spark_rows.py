"""Rows the Spark scenarios write, as SQL for Spark and as a Python model
to compare every engine's reads with.

Timestamps are compared as microseconds since the epoch (Spark unix_micros,
DuckDB epoch_us), so no time zone conversion is involved on either side.
"""

from __future__ import annotations

import datetime as dt

EPOCH_US = 1709251200 * 1_000_000  # 2024-03-01T00:00:00Z
STEP_US = 37 * 60 * 1_000_000  # rows 37 minutes apart: several days
CATEGORIES = ["alpha", "beta", "gamma"]

CREATE_COLUMNS = "id BIGINT, ts TIMESTAMP, category STRING, value DOUBLE"


def gen_sql(start: int, n: int, note: bool = False) -> str:
    """A SELECT producing rows start..start+n-1; model() computes the same
    rows in Python."""
    cols = [
        "id",
        f"timestamp_micros({EPOCH_US} + id * {STEP_US} + id) AS ts",
        "element_at(array('alpha', 'beta', 'gamma'), CAST(id % 3 + 1 AS INT)) AS category",
        "CASE WHEN id % 50 = 7 THEN NULL ELSE CAST(id * 0.25 AS DOUBLE) END AS value",
    ]
    if note:
        cols.append("concat('note-', CAST(id AS STRING)) AS note")
    return f"SELECT {', '.join(cols)} FROM range({start}, {start + n})"


def model(start: int, n: int, note: bool | None = False) -> dict[int, tuple]:
    """Rows of gen_sql by id, as (id, ts micros, category, value[, note]).
    note=None adds the note column as null (rows written before it existed)."""
    rows = {}
    for i in range(start, start + n):
        r = (i, EPOCH_US + i * STEP_US + i, CATEGORIES[i % 3], None if i % 50 == 7 else i * 0.25)
        if note is None:
            r += (None,)
        elif note:
            r += (f"note-{i}",)
        rows[i] = r
    return rows


def day_of(micros: int) -> dt.date:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)).date()


def collect(spark, query: str) -> list[tuple]:
    return [tuple(r) for r in spark.sql(query).collect()]
