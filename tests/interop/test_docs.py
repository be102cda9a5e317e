"""docs/engines.md shows each engine's configuration; this checks that every
configuration line there is one the suite uses (engines.py), and that every
pinned version it names is the one the suite installs. docs/ingest.md shows
each engine's queries of JSON payloads; this checks that they are the ones
test_json_payloads.py runs (json_queries.py), on the events it sends."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import artifacts
import engines
import json_queries
from conftest import REPO_ROOT, S3Target
from test_json_payloads import want_by_kind

DOC = REPO_ROOT / "docs" / "engines.md"
INGEST_DOC = REPO_ROOT / "docs" / "ingest.md"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
EXAMPLE_URI = "http://127.0.0.1:8181"
EXAMPLE_S3 = S3Target(
    endpoint="http://127.0.0.1:9000", access_key="ACCESS_KEY", secret_key="SECRET_KEY", region="us-east-1", bucket=""
)


def sections() -> dict[str, list[tuple[str, list[str]]]]:
    """The fenced code blocks of each '## ' section: (language, lines)."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    current, block, lang = "", None, ""
    for line in DOC.read_text().splitlines():
        if block is not None:
            if line.startswith("```"):
                out.setdefault(current, []).append((lang, block))
                block = None
            else:
                block.append(line)
        elif line.startswith("```"):
            block, lang = [], line[3:].strip()
        elif line.startswith("## "):
            current = line[3:].strip()
    return out


def subsections(doc: Path, section: str) -> dict[str, dict[str, list]]:
    """The '## section' of doc by its '### ' subsections ('' for the text
    before the first one): "blocks", its fenced code blocks as (language,
    text), and "lines", its lines outside them."""
    out: dict[str, dict[str, list]] = {}
    inside, sub, block, lang = False, "", None, ""
    for line in doc.read_text().splitlines():
        if block is not None:
            if line.startswith("```"):
                out[sub]["blocks"].append((lang, "\n".join(block)))
                block = None
            else:
                block.append(line)
            continue
        if line.startswith("## "):
            inside, sub = line[3:].strip() == section, ""
            if inside:
                out[sub] = {"blocks": [], "lines": []}
            continue
        if not inside:
            continue
        if line.startswith("### "):
            sub = line[4:].strip()
            out[sub] = {"blocks": [], "lines": []}
        elif line.startswith("```"):
            block, lang = [], line[3:].strip()
        else:
            out[sub]["lines"].append(line)
    return out


def properties(lines: list[str]) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in lines if ln.strip() and not ln.startswith("#"))


def test_docs_pyiceberg():
    (lang, lines), = sections()["PyIceberg"]
    call = next(ln for ln in lines if "load_catalog(" in ln and "import" not in ln)
    kwargs = dict(re.findall(r'(\w+)="([^"]*)"', call))
    assert kwargs == {**engines.PYICEBERG_CATALOG_CONF, "uri": EXAMPLE_URI}, f"docs/engines.md PyIceberg: {call!r}"


def test_docs_spark():
    (lang, lines), = sections()["Spark"]
    conf = dict(m.groups() for m in (re.search(r"--conf (\S+?)=(\S+)", ln) for ln in lines) if m)
    want = {
        "spark.jars": ",".join(a.filename for a in engines.SPARK_JARS),
        **engines.SPARK_CATALOG_CONF,
        engines.SPARK_URI_KEY: EXAMPLE_URI,
    }
    assert conf == want, f"docs/engines.md Spark --conf lines {conf}\nthe suite sets {want}"
    assert len(conf) == sum(1 for ln in lines if "--conf" in ln), "a --conf line of docs/engines.md is not key=value"


def test_docs_live():
    """The Live reads lines are the ones the live suites use: Spark's and
    PyIceberg's (test_live.py) and iceberg-go's (tests/e2e/live_test.go)."""
    blocks = sections()["Live reads"]
    (spark,) = [lines for lang, lines in blocks if lang == "sh"]
    conf = dict(m.groups() for m in (re.search(r"--conf (\S+?)=(\S+)", ln) for ln in spark) if m)
    want = {**engines.SPARK_LIVE_CATALOG_CONF, engines.SPARK_LIVE_URI_KEY: EXAMPLE_URI}
    assert conf == want, f"docs/engines.md live Spark --conf lines {conf}\nthe suite sets {want}"
    (py,) = [lines for lang, lines in blocks if lang == "python"]
    call = next(ln for ln in py if "load_catalog(" in ln)
    kwargs = dict(re.findall(r'(\w+)="([^"]*)"', call))
    assert kwargs == {**engines.PYICEBERG_LIVE_CATALOG_CONF, "uri": EXAMPLE_URI}, f"docs/engines.md live PyIceberg: {call!r}"
    (go,) = [lines for lang, lines in blocks if lang == "go"]
    go = "\n".join(go)
    e2e = (REPO_ROOT / "tests" / "e2e" / "live_test.go").read_text()
    for doc, test in [('"warehouse": "live"', 'restCatalog(t, inst, "warehouse", "live")'),
                      ("table.WithScanPlanningMode(table.ScanPlanningRemote)", "table.WithScanPlanningMode(table.ScanPlanningRemote)")]:
        assert doc in go, f"docs/engines.md live iceberg-go lacks {doc}"
        assert test in e2e, f"tests/e2e/live_test.go no longer uses {test}, which docs/engines.md shows"


def test_docs_auth():
    """The credential lines of the Authentication section are what the auth
    suites (test_spark_auth.py, test_pyiceberg_auth.py) set."""
    blocks = sections()["Authentication"]
    (spark,) = [lines for lang, lines in blocks if lang == "sh"]
    conf = dict(m.groups() for m in (re.search(r"--conf (\S+?)=(\S+)", ln) for ln in spark) if m)
    assert conf == {engines.SPARK_CREDENTIAL_KEY: "CLIENT_ID:CLIENT_SECRET"}, f"docs/engines.md Spark credential {conf}"
    (py,) = [lines for lang, lines in blocks if lang == "python"]
    call = next(ln for ln in py if "load_catalog(" in ln)
    kwargs = dict(re.findall(r'(\w+)="([^"]*)"', call))
    want = {**engines.PYICEBERG_CATALOG_CONF, "uri": EXAMPLE_URI, engines.PYICEBERG_CREDENTIAL_KEY: "CLIENT_ID:CLIENT_SECRET"}
    assert kwargs == want, f"docs/engines.md PyIceberg credential: {call!r}"


def test_docs_remote_signing():
    """The lines of the Remote signing section are what the signing suites
    (test_spark_signing.py, test_pyiceberg_signing.py) set."""
    blocks = sections()["Remote signing"]
    (spark,) = [lines for lang, lines in blocks if lang == "sh"]
    conf = dict(m.groups() for m in (re.search(r"--conf (\S+?)=(\S+)", ln) for ln in spark) if m)
    assert conf == engines.SPARK_REMOTE_SIGNING_CONF, f"docs/engines.md Spark remote signing {conf}"
    (py,) = [lines for lang, lines in blocks if lang == "python"]
    call = next(ln for ln in py if "load_catalog(" in ln)
    kwargs = dict(re.findall(r'"?([\w.-]+)"?[=:] ?"([^"]*)"', call.split("load_catalog(", 1)[1]))
    want = {**engines.PYICEBERG_CATALOG_CONF, "uri": EXAMPLE_URI, **engines.PYICEBERG_REMOTE_SIGNING_CONF}
    assert kwargs == want, f"docs/engines.md PyIceberg remote signing: {call!r} gives {kwargs}"
    assert "s3fs" in REQUIREMENTS.read_text(), "requirements.txt lacks s3fs, which docs/engines.md says PyIceberg needs"


def test_docs_vended_credentials():
    """The lines of the Vended credentials section are what the vending
    suites (test_spark_vended.py, test_pyiceberg_vended.py,
    test_trino_vended.py, test_duckdb_vended.py) set."""
    blocks = sections()["Vended credentials"]
    (spark,) = [lines for lang, lines in blocks if lang == "sh"]
    conf = dict(m.groups() for m in (re.search(r"--conf (\S+?)=(\S+)", ln) for ln in spark) if m)
    assert conf == engines.SPARK_VENDED_CREDENTIALS_CONF, f"docs/engines.md Spark vended credentials {conf}"
    (py,) = [lines for lang, lines in blocks if lang == "python"]
    call = next(ln for ln in py if "load_catalog(" in ln)
    kwargs = dict(re.findall(r'"?([\w.-]+)"?[=:] ?"([^"]*)"', call.split("load_catalog(", 1)[1]))
    want = {**engines.PYICEBERG_CATALOG_CONF, "uri": EXAMPLE_URI, **engines.PYICEBERG_VENDED_CREDENTIALS_CONF}
    assert kwargs == want, f"docs/engines.md PyIceberg vended credentials: {call!r} gives {kwargs}"
    (trino,) = [lines for lang, lines in blocks if lang == "properties"]
    want_trino = {"connector.name": "iceberg",
                  **engines.trino_catalog_properties(EXAMPLE_URI, EXAMPLE_S3, credential="CLIENT_ID:CLIENT_SECRET")}
    assert properties(trino) == want_trino, f"docs/engines.md Trino vended {properties(trino)}\nthe suite uses {want_trino}"
    (duck,) = [lines for lang, lines in blocks if lang == "sql"]
    sql = [ln.rstrip(";") for ln in duck if ln.strip()]
    want_duck = engines.duckdb_vended_setup(EXAMPLE_URI, "CLIENT_ID", "CLIENT_SECRET")
    assert sql == want_duck, f"docs/engines.md DuckDB vended SQL {sql}\nthe suite runs {want_duck}"


def test_docs_duckdb():
    blocks = dict(sections()["DuckDB"])
    sql = [ln.rstrip(";") for ln in blocks["sql"] if ln.strip()]
    want = [stmt.format(uri=EXAMPLE_URI) for stmt in engines.DUCKDB_SETUP]
    assert sql == want, f"docs/engines.md DuckDB SQL {sql}\nthe suite runs {want}"
    source = inspect.getsource(engines)
    for needle in ('os.path.join(list(duckdb_ext.__path__)[0], "extensions")', '"autoinstall_known_extensions": False'):
        assert needle in "\n".join(blocks["python"]), f"docs/engines.md DuckDB connect lacks {needle}"
        assert needle in source, f"engines.py no longer uses {needle} that docs/engines.md shows"


def test_docs_trino():
    (_, local), (_, s3) = sections()["Trino"]
    local_props = properties(local)
    want_local = {"connector.name": "iceberg", **engines.trino_catalog_properties(EXAMPLE_URI)}
    assert local_props == want_local, f"docs/engines.md Trino (local) {local_props}\nthe suite uses {want_local}"
    base = {k: v for k, v in local_props.items() if not k.startswith(("fs.", "local."))}
    got_s3 = {**base, **properties(s3)}
    want_s3 = {"connector.name": "iceberg", **engines.trino_catalog_properties(EXAMPLE_URI, EXAMPLE_S3)}
    assert got_s3 == want_s3, f"docs/engines.md Trino (S3) {got_s3}\nthe suite uses {want_s3}"


def test_docs_versions():
    """Every name==version and Maven coordinate the page names is pinned."""
    text = DOC.read_text()
    pins = {ln.split("#")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()}
    pins |= {p.replace("[pyarrow,pyiceberg-core]", "") for p in pins}
    named = re.findall(r"`([A-Za-z0-9_.-]+==[0-9][^`\s]*)`", text)
    assert named, "docs/engines.md names no package version"
    for pin in named:
        assert pin in pins, f"docs/engines.md names {pin}, requirements.txt pins otherwise"
    coords = re.findall(r"`([a-z][\w.]+:[\w.-]+:[\w.]+)`", text)
    assert coords, "docs/engines.md names no Maven artifact"
    for c in coords:
        assert c in {str(a) for a in artifacts.ALL}, f"docs/engines.md names {c}, artifacts.py pins otherwise"


def test_docs_json_payloads():
    """docs/ingest.md, JSON payloads: the events shown are the ones
    test_json_payloads.py POSTs, the way it POSTs them; each engine's blocks
    are the exact queries the test runs in that engine, for the page's
    table; the by-kind table is what those events give."""
    where = "docs/ingest.md, JSON payloads"
    parts = subsections(INGEST_DOC, "JSON payloads")
    assert "" in parts, f"{where}: no such section"
    intro = parts[""]
    (curl,) = [text for lang, text in intro["blocks"] if lang == "sh"]
    for needle in (f"Content-Type: {json_queries.CONTENT_TYPE}", f"/tables/{json_queries.EXAMPLE_TABLE}/bulk"):
        assert needle in curl, f"{where}: the curl command lacks {needle!r}, which the test sends: {curl!r}"
    (events,) = [text for lang, text in intro["blocks"] if lang == "json"]
    assert events.splitlines() == json_queries.EVENT_LINES, (
        f"{where}: the events shown\n{events}\nare not json_queries.EVENT_LINES\n" + "\n".join(json_queries.EVENT_LINES)
    )

    for engine in json_queries.ENGINES:
        heading = json_queries.HEADINGS[engine]
        lang = "python" if engine == "pyiceberg" else "sql"
        want = [(lang, json_queries.render(engine, q, json_queries.EXAMPLE_TABLE)) for q in json_queries.QUERY_NAMES]
        got = parts.get(heading, {}).get("blocks")
        assert got == want, f"{where}, {heading}: code blocks\n{got}\nthe test runs\n{want}"

    rows = [ln for ln in intro["lines"] if ln.startswith("|")]
    assert rows[:2] == ["| kind | events | total |", "| --- | --- | --- |"], f"{where}: by-kind table header {rows[:2]}"
    got = [tuple(c.strip() for c in ln.strip("|").split("|")) for ln in rows[2:]]
    payloads = [json.loads(line)["payload"] for line in json_queries.EVENT_LINES]
    want = [tuple("null" if v is None else str(v) for v in r) for r in want_by_kind(dict(enumerate(payloads)))]
    assert got == want, f"{where}: the by-kind table {got}, the events shown give {want}"
