"""A reader for cmd/zombi-livebench: queries one table on Zombi's live
catalog view back to back, reading the sequence column above the highest
one seen so far, and prints one line per query:

    <unix nanoseconds the query ended> <highest sequence seen> <rows> <distinct rows>

    python3 scripts/live_reader.py pyiceberg|spark

The URL and table come from ZOMBI_URL and ZOMBI_TABLE (namespace default).
Engines are configured exactly as docs/engines.md's "Live reads" shows
(tests/interop/engines.py); run it with the interop suite's Python
(scripts/pyenv.sh), which has PyIceberg, PySpark and the Spark jars.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "interop"))

import engines  # noqa: E402


def emit(high: int, seqs: list[int]) -> int:
    top = max([high, *seqs])
    print(time.time_ns(), top, len(seqs), len(set(seqs)), flush=True)
    return top


def pyiceberg(uri: str, name: str) -> None:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.expressions import GreaterThan

    cat = load_catalog("zombi_live", **engines.PYICEBERG_LIVE_CATALOG_CONF, uri=uri)
    high = 0
    while True:
        tbl = cat.load_table(("default", name))
        seqs = tbl.scan(row_filter=GreaterThan("sequence", high), selected_fields=("sequence",)).to_arrow()
        high = emit(high, seqs.column("sequence").to_pylist())


def spark(uri: str, name: str) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="zombi-live-reader-"))
    s = engines.spark_live_session(engines.start_spark(scratch), uri)
    high = 0
    while True:
        rows = s.sql(f"SELECT sequence FROM zombi_live.default.{name} WHERE sequence > {high}").collect()
        high = emit(high, [r[0] for r in rows])


def main() -> None:
    engine = sys.argv[1] if len(sys.argv) == 2 else ""
    readers = {"pyiceberg": pyiceberg, "spark": spark}
    if engine not in readers:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(readers)}")
    readers[engine](os.environ["ZOMBI_URL"], os.environ["ZOMBI_TABLE"])


if __name__ == "__main__":
    main()
