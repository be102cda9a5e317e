"""The queries that read fields of JSON payloads in an event table, one set
per engine, exactly as docs/ingest.md ("JSON payloads") shows them:
test_json_payloads.py runs them and test_docs.py checks that the page shows
these texts.

An event table stores a JSON payload as its JSON text in the `binary`
column `payload`, so every engine first turns the bytes into a string and
then applies its JSON functions. `{table}` stands for the table as the
engine names it (table_name); the page uses the table default.clicks.

Each engine answers two queries:

  fields    every event's sequence, user, amount, kind, address.city and
            address.country, by sequence; a field the payload lacks (or
            holds as null) is null
  by_kind   the events whose address.country is 'CH', grouped by kind:
            kind, how many events, the sum of their amounts; the group of
            events without a kind last

The SQL engines return those columns in that order. The PyIceberg snippets
are Python run one after the other in one namespace holding `catalog` (a
PyIceberg catalog, as docs/engines.md configures it); each leaves its answer
in a pyarrow Table named like the query.
"""

from __future__ import annotations

QUERY_NAMES = ("fields", "by_kind")
ENGINES = ("spark", "duckdb", "trino", "pyiceberg")
# The heading of each engine's part of the page.
HEADINGS = {"spark": "Spark", "duckdb": "DuckDB", "trino": "Trino", "pyiceberg": "PyIceberg"}

# The page's table (namespace.name).
EXAMPLE_TABLE = "default.clicks"
# Producers POST EVENT_LINES to /tables/{table}/bulk as one NDJSON body.
CONTENT_TYPE = "application/x-ndjson"


def table_name(engine: str, table: str) -> str:
    """How engine names the event table `table` (namespace.name): the SQL
    engines through their catalog `zombi`, PyIceberg by its identifier."""
    return table if engine == "pyiceberg" else f"zombi.{table}"


def render(engine: str, query: str, table: str) -> str:
    """query of engine with {table} filled in for table (namespace.name).
    str.replace, not str.format: the Python snippets hold braces."""
    return QUERIES[engine][query].replace("{table}", table_name(engine, table))


# The events producers send in the example (NDJSON, one envelope a line, to
# POST /tables/default.clicks/bulk), and that the test sends: strings
# (one with an escape, some non-ASCII), numbers (negative, and 2^53 + 1,
# which a double cannot hold), nested objects, absent fields, an explicit
# null.
EVENT_LINES = [
    '{"payload": {"user": "alice", "kind": "click", "amount": 3, "address": {"city": "Zürich", "country": "CH"}}}',
    '{"payload": {"user": "bob", "kind": "view", "amount": 10, "address": {"city": "Genève", "country": "CH"}}}',
    '{"payload": {"user": "Łukasz", "kind": "click", "amount": -4, "address": {"city": "Kraków", "country": "PL"}}}',
    '{"payload": {"user": "carol", "kind": "click", "amount": 9007199254740993, "address": {"city": "Bern", "country": "CH"}}}',
    '{"payload": {"user": "Ren\\u00e9", "kind": "view", "address": {"city": "Basel", "country": "CH"}}}',
    '{"payload": {"user": "東京の花子", "kind": "purchase", "amount": 250, "tags": ["new", "mobile"]}}',
    '{"payload": {"kind": "view", "amount": 1, "address": {"country": "CH"}}}',
    '{"payload": {"user": "eve", "kind": null, "amount": 5, "address": {"city": "Lugano", "country": "CH"}}}',
    '{"payload": {"user": "frank", "amount": 2, "address": {"city": "Chur", "country": "CH", "zip": 7000}}}',
]

QUERIES = {
    # Spark: CAST(payload AS STRING) decodes the bytes as UTF-8;
    # get_json_object answers one field as a string, from_json parses the
    # payload into a struct of the schema given.
    "spark": {
        "fields": """\
SELECT sequence,
       get_json_object(CAST(payload AS STRING), '$.user') AS user,
       CAST(get_json_object(CAST(payload AS STRING), '$.amount') AS BIGINT) AS amount,
       get_json_object(CAST(payload AS STRING), '$.kind') AS kind,
       get_json_object(CAST(payload AS STRING), '$.address.city') AS city,
       get_json_object(CAST(payload AS STRING), '$.address.country') AS country
FROM {table}
ORDER BY sequence""",
        "by_kind": """\
SELECT e.kind, count(*) AS events, sum(e.amount) AS total
FROM (
  SELECT from_json(CAST(payload AS STRING),
                   'kind STRING, amount BIGINT, address STRUCT<city: STRING, country: STRING>') AS e
  FROM {table}
) AS t
WHERE e.address.country = 'CH'
GROUP BY e.kind
ORDER BY e.kind NULLS LAST""",
    },
    # DuckDB: decode(payload) is the blob as VARCHAR (it must be UTF-8);
    # CAST(payload AS VARCHAR) would escape every non-ASCII byte and every
    # quote (\x22), which is no longer JSON. ->> is json_extract_string.
    "duckdb": {
        "fields": """\
SELECT sequence,
       decode(payload) ->> '$.user' AS user,
       CAST(decode(payload) ->> '$.amount' AS BIGINT) AS amount,
       decode(payload) ->> '$.kind' AS kind,
       decode(payload) ->> '$.address.city' AS city,
       decode(payload) ->> '$.address.country' AS country
FROM {table}
ORDER BY sequence""",
        "by_kind": """\
SELECT kind, count(*) AS events, sum(amount) AS total
FROM (
  SELECT decode(payload) ->> '$.kind' AS kind,
         CAST(decode(payload) ->> '$.amount' AS BIGINT) AS amount,
         decode(payload) ->> '$.address.country' AS country
  FROM {table}
) AS e
WHERE country = 'CH'
GROUP BY kind
ORDER BY kind NULLS LAST""",
    },
    # Trino: from_utf8(payload) is the varbinary as varchar;
    # json_extract_scalar answers a scalar field as varchar.
    "trino": {
        "fields": """\
SELECT sequence,
       json_extract_scalar(from_utf8(payload), '$.user') AS user,
       CAST(json_extract_scalar(from_utf8(payload), '$.amount') AS bigint) AS amount,
       json_extract_scalar(from_utf8(payload), '$.kind') AS kind,
       json_extract_scalar(from_utf8(payload), '$.address.city') AS city,
       json_extract_scalar(from_utf8(payload), '$.address.country') AS country
FROM {table}
ORDER BY sequence""",
        "by_kind": """\
SELECT kind, count(*) AS events, sum(amount) AS total
FROM (
  SELECT json_extract_scalar(from_utf8(payload), '$.kind') AS kind,
         CAST(json_extract_scalar(from_utf8(payload), '$.amount') AS bigint) AS amount,
         json_extract_scalar(from_utf8(payload), '$.address.country') AS country
  FROM {table}
) AS e
WHERE country = 'CH'
GROUP BY kind
ORDER BY kind NULLS LAST""",
    },
    # PyIceberg reads the table to Arrow; json.loads parses each payload
    # (bytes), and pyarrow filters and groups the fields.
    "pyiceberg": {
        "fields": """\
import json

import pyarrow as pa

arrow = catalog.load_table("{table}").scan(selected_fields=("sequence", "payload")).to_arrow()
events = [json.loads(p) for p in arrow["payload"].to_pylist()]
addresses = [e.get("address") or {} for e in events]
fields = pa.table({
    "sequence": arrow["sequence"],
    "user": pa.array([e.get("user") for e in events], pa.string()),
    "amount": pa.array([e.get("amount") for e in events], pa.int64()),
    "kind": pa.array([e.get("kind") for e in events], pa.string()),
    "city": pa.array([a.get("city") for a in addresses], pa.string()),
    "country": pa.array([a.get("country") for a in addresses], pa.string()),
}).sort_by("sequence")""",
        "by_kind": """\
import pyarrow.compute as pc

by_kind = (
    fields.filter(pc.field("country") == "CH")
    .group_by("kind")
    .aggregate([([], "count_all"), ("amount", "sum")])
    .select(["kind", "count_all", "amount_sum"])
    .rename_columns(["kind", "events", "total"])
    .sort_by("kind")
)""",
    },
}
