"""One way to read a table in every engine, for comparing their answers.

A Reader turns a list of columns, each with a kind, into the engine's own
SQL (or a PyIceberg scan) and its values into plain Python, so that the
four engines' rows can be compared with one model:

  v       the value as the engine returns it (ints, strings, floats, bools)
  us      a timestamp (with or without time zone) as microseconds since
          1970-01-01T00:00:00 UTC
  hex     binary as upper-case hex
  text    the engine's cast to a string (decimals, dates)
  list    a list, or None
  struct  a struct as a tuple of its fields' values, or None

Rows come back sorted by their first column, which must be unique and not
null. A filter is ("range", column, lo_us, hi_us) for lo <= column < hi on
a timestamp column, or ("eq", column, value) for an integer or a string.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

Cols = list[tuple[str, str]]  # (kind, column name)


def iso_of(us: int) -> str:
    return (EPOCH + dt.timedelta(microseconds=us)).isoformat()


def iso_micros(text: str | None) -> int | None:
    """Microseconds since the epoch of an ISO 8601 date-time; one without
    an offset is UTC."""
    if text is None:
        return None
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda r: r[0])


class Reader:
    """What every engine can answer about a table ns.name."""

    engine = ""

    def rows(self, table: str, cols: Cols, where=None, snapshot: int | None = None) -> list[tuple]:
        raise NotImplementedError

    def rows_and_files(self, table: str, cols: Cols) -> tuple[list[tuple], int]:
        """The table's rows and how many data files the engine read them
        from, both from one view of the table."""
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def seq_time_aggregates(self, table: str, seq: str, time: str) -> tuple:
        """(count, min(seq), max(seq), min(time) us, max(time) us) as the
        engine computes them: aggregates that Spark may answer from the
        data files' statistics alone."""
        raise NotImplementedError


class _SQLReader(Reader):
    """Readers that speak SQL; subclasses give the dialect."""

    quote = '"'

    def q(self, name: str) -> str:
        return f"{self.quote}{name}{self.quote}"

    def expr(self, kind: str, col: str) -> str:
        c = self.q(col)
        if kind == "us":
            return self.micros(c)
        if kind == "hex":
            return f"{self.hex_fn}({c})"
        if kind == "text":
            return f"CAST({c} AS {self.text_type})"
        return c

    def convert(self, kind: str, value):
        if value is None:
            return None
        if kind == "struct":
            return self.struct(value)
        if kind == "list":
            return list(value)
        return value

    def struct(self, value) -> tuple:
        return tuple(value)

    def where_sql(self, where) -> str:
        if where is None:
            return ""
        op, col, *args = where
        if op == "range":
            lo, hi = args
            return f" WHERE {self.q(col)} >= {self.ts_literal(lo)} AND {self.q(col)} < {self.ts_literal(hi)}"
        if op == "eq":
            return f" WHERE {self.q(col)} = {self.literal(args[0])}"
        raise ValueError(f"unknown filter {where!r}")

    def literal(self, v) -> str:
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return str(int(v))

    def ref(self, table: str, snapshot: int | None = None) -> str:
        ns, name = table.rsplit(".", 1)
        base = f"zombi.{self.q(ns)}.{self.q(name)}"
        return base if snapshot is None else f"{base} {self.version_as_of(snapshot)}"

    def select(self, table: str, cols: Cols, where=None, snapshot=None, extra: str = "") -> str:
        exprs = ", ".join(self.expr(k, c) for k, c in cols)
        if extra:
            exprs += ", " + extra
        return f"SELECT {exprs} FROM {self.ref(table, snapshot)}{self.where_sql(where)}"

    def post(self, cols: Cols, raw: list) -> list[tuple]:
        return [tuple(self.convert(k, v) for (k, _), v in zip(cols, r)) for r in raw]

    def rows(self, table, cols, where=None, snapshot=None):
        return _sorted(self.post(cols, self.fetch(self.select(table, cols, where, snapshot))))

    def seq_time_aggregates(self, table, seq, time):
        s, t = self.q(seq), self.q(time)
        raw = self.fetch(
            f"SELECT count(*), min({s}), max({s}), {self.micros(f'min({t})')}, {self.micros(f'max({t})')} "
            f"FROM {self.ref(table)}"
        )[0]
        return (*(int(x) for x in raw[:3]), *self.post([("us", ""), ("us", "")], [raw[3:]])[0])

    def fetch(self, sql: str) -> list:
        raise NotImplementedError


class SparkReader(_SQLReader):
    engine = "spark"
    quote = "`"
    hex_fn = "hex"
    text_type = "STRING"

    def __init__(self, spark):
        self.spark = spark

    def micros(self, c: str) -> str:
        # A TIMESTAMP_NTZ column is cast in the session time zone (UTC).
        return f"unix_micros(CAST({c} AS TIMESTAMP))"

    def ts_literal(self, us: int) -> str:
        return f"timestamp_micros({int(us)})"

    def version_as_of(self, snapshot: int) -> str:
        return f"VERSION AS OF {snapshot}"

    def fetch(self, sql):
        return [list(r) for r in self.spark.sql(sql).collect()]

    def rows_and_files(self, table, cols):
        raw = self.fetch(self.select(table, cols, extra="_file"))
        return _sorted(self.post(cols, [r[:-1] for r in raw])), len({r[-1] for r in raw})

    def columns(self, table):
        return list(self.spark.table(self.ref(table)).columns)


class DuckDBReader(_SQLReader):
    engine = "duckdb"
    hex_fn = "hex"
    text_type = "VARCHAR"

    def __init__(self, con):
        self.con = con

    def micros(self, c: str) -> str:
        return f"epoch_us({c})"

    def ts_literal(self, us: int) -> str:
        return f"TIMESTAMPTZ '{iso_of(us)}'"

    def version_as_of(self, snapshot: int) -> str:
        return f"AT (VERSION => {snapshot})"

    def struct(self, value) -> tuple:
        return tuple(value.values())

    def fetch(self, sql):
        return [list(r) for r in self.con.execute(sql).fetchall()]

    def rows_and_files(self, table, cols):
        # One transaction: DuckDB's Iceberg catalog keeps one version of the
        # table per transaction, so the rows and the file list agree.
        self.con.execute("BEGIN TRANSACTION")
        try:
            rows = self.rows(table, cols)
            files = self.fetch(f"SELECT count(*) FROM iceberg_metadata({self.ref(table)}) WHERE status <> 'DELETED'")[0][0]
        finally:
            self.con.execute("COMMIT")
        return rows, files

    def columns(self, table):
        return [r[0] for r in self.fetch(f"DESCRIBE {self.ref(table)}")]


class TrinoReader(_SQLReader):
    engine = "trino"
    hex_fn = "to_hex"
    text_type = "varchar"

    def __init__(self, trino):
        self.trino = trino

    def micros(self, c: str) -> str:
        # No exact microseconds function in Trino: ISO text, parsed below.
        return f"to_iso8601({c})"

    def convert(self, kind, value):
        if kind == "us":
            return iso_micros(value)
        return super().convert(kind, value)

    def ts_literal(self, us: int) -> str:
        return f"TIMESTAMP '{(EPOCH + dt.timedelta(microseconds=us)).strftime('%Y-%m-%d %H:%M:%S.%f')} UTC'"

    def version_as_of(self, snapshot: int) -> str:
        return f"FOR VERSION AS OF {snapshot}"

    def fetch(self, sql):
        return self.trino.query(sql)[1]

    def rows_and_files(self, table, cols):
        raw = self.fetch(self.select(table, cols, extra='"$path"'))
        return _sorted(self.post(cols, [r[:-1] for r in raw])), len({r[-1] for r in raw})

    def columns(self, table):
        ns, name = table.rsplit(".", 1)
        return [r[0] for r in self.fetch(f'SHOW COLUMNS FROM zombi."{ns}"."{name}"')]


class PyIcebergReader(Reader):
    """PyIceberg has no SQL: a scan with a row filter, values converted
    from Arrow, aggregates computed over the scanned rows."""

    engine = "pyiceberg"

    def __init__(self, catalog):
        self.catalog = catalog

    def scan(self, table, cols, where=None, snapshot=None):
        from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan

        row_filter = AlwaysTrue()
        if where is not None:
            op, col, *args = where
            if op == "range":
                row_filter = And(GreaterThanOrEqual(col, iso_of(args[0])), LessThan(col, iso_of(args[1])))
            elif op == "eq":
                row_filter = EqualTo(col, args[0])
            else:
                raise ValueError(f"unknown filter {where!r}")
        tbl = self.catalog.load_table(table)
        return tbl.scan(row_filter=row_filter, selected_fields=tuple(c for _, c in cols), snapshot_id=snapshot)

    def arrow_rows(self, arrow: pa.Table, cols: Cols) -> list[tuple]:
        columns = []
        for kind, name in cols:
            col = arrow.column(name)
            if kind == "us":
                unit = pa.timestamp("us", tz=col.type.tz)
                values = pc.cast(pc.cast(col, unit), pa.int64()).to_pylist()
            elif kind == "hex":
                values = [None if v is None else v.hex().upper() for v in col.to_pylist()]
            elif kind == "text":
                values = [None if v is None else (v.isoformat() if isinstance(v, dt.date) else str(v)) for v in col.to_pylist()]
            elif kind == "struct":
                values = [None if v is None else tuple(v.values()) for v in col.to_pylist()]
            else:
                values = col.to_pylist()
            columns.append(values)
        return _sorted(list(zip(*columns)))

    def rows(self, table, cols, where=None, snapshot=None):
        return self.arrow_rows(self.scan(table, cols, where, snapshot).to_arrow(), cols)

    def rows_and_files(self, table, cols):
        sc = self.scan(table, cols)
        files = len(list(sc.plan_files()))
        return self.arrow_rows(sc.to_arrow(), cols), files

    def columns(self, table):
        return [f.name for f in self.catalog.load_table(table).schema().fields]

    def seq_time_aggregates(self, table, seq, time):
        arrow = self.scan(table, [("v", seq), ("us", time)]).to_arrow()
        s = arrow.column(seq)
        t = pc.cast(pc.cast(arrow.column(time), pa.timestamp("us", tz="UTC")), pa.int64())
        return (
            arrow.num_rows,
            pc.min(s).as_py(),
            pc.max(s).as_py(),
            pc.min(t).as_py(),
            pc.max(t).as_py(),
        )
