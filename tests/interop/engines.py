"""How the suite starts each engine and points it at zombi.

Every engine is configured with the catalog's URI and nothing else about
storage: S3 endpoint, region, addressing style and keys reach it through the
catalog's loadTable config. The settings here are the ones docs/engines.md
shows; test_docs.py checks that the two agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import artifacts

# ---------------------------------------------------------------------------
# PyIceberg

# load_catalog(name, **PYICEBERG_CATALOG_CONF, uri=...): nothing else.
PYICEBERG_CATALOG_CONF = {"type": "rest"}
# The live catalog view: the same, with warehouse=live.
PYICEBERG_LIVE_CATALOG_CONF = {"type": "rest", "warehouse": "live"}

# With auth on, an OAuth2 client's ID and secret: PyIceberg takes a token
# for it from the catalog's /v1/oauth/tokens (docs/engines.md,
# Authentication).
PYICEBERG_CREDENTIAL_KEY = "credential"
# Remote signing: the catalog asks Zombi to sign every S3 request, and so
# needs no S3 keys (docs/engines.md).
PYICEBERG_REMOTE_SIGNING_CONF = {"header.X-Iceberg-Access-Delegation": "remote-signing"}
# Vended credentials: the catalog hands out temporary S3 keys limited to
# the table (PyIceberg asks for them by default; docs/engines.md).
PYICEBERG_VENDED_CREDENTIALS_CONF = {"header.X-Iceberg-Access-Delegation": "vended-credentials"}

# ---------------------------------------------------------------------------
# Spark

# Spark 4.1 runs on Java 17 or 21; the suite picks the JDK explicitly rather
# than whatever `java` is on PATH. ZOMBI_TEST_SPARK_JAVA_HOME overrides it.
SPARK_JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
ENV_SPARK_JAVA_HOME = "ZOMBI_TEST_SPARK_JAVA_HOME"

SPARK_JARS = [artifacts.ICEBERG_SPARK_RUNTIME, artifacts.ICEBERG_AWS_BUNDLE]

# The catalog: these lines, plus spark.jars and the URI, are all a user sets.
# cache-enabled=false: Iceberg's catalog cache keeps a loaded table until it
# has gone unused for 30 s, so a session reading an ingest table every few
# seconds would never see zombi's flushes (docs/engines.md).
SPARK_CATALOG_CONF = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "spark.sql.catalog.zombi": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.zombi.type": "rest",
    "spark.sql.catalog.zombi.cache-enabled": "false",
}
SPARK_URI_KEY = "spark.sql.catalog.zombi.uri"
# With auth on: an OAuth2 client's ID:SECRET, nothing else (no token).
SPARK_CREDENTIAL_KEY = "spark.sql.catalog.zombi.credential"

# The live catalog view (docs/engines.md, "Live reads"): the same catalog
# with warehouse=live, under its own name beside zombi.
SPARK_LIVE_CATALOG_CONF = {
    "spark.sql.catalog.zombi_live": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.zombi_live.type": "rest",
    "spark.sql.catalog.zombi_live.cache-enabled": "false",
    "spark.sql.catalog.zombi_live.warehouse": "live",
}
SPARK_LIVE_URI_KEY = "spark.sql.catalog.zombi_live.uri"

# Test-run settings that have nothing to do with zombi: a small local
# Spark, no UI, UTC, scratch space under pytest's temporary directory.
SPARK_LOCAL_CONF = {
    "spark.master": "local[2]",
    "spark.app.name": "zombi-interop",
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
}


def spark_java_home() -> Path:
    home = Path(os.environ.get(ENV_SPARK_JAVA_HOME) or SPARK_JAVA_HOME)
    if not (home / "bin" / "java").is_file():
        raise RuntimeError(
            f"spark: no JDK at {home} (set ${ENV_SPARK_JAVA_HOME}); scripts/test.sh installs "
            f"Debian's openjdk-17-jre-headless when {SPARK_JAVA_HOME} is missing"
        )
    return home


def start_spark(scratch: Path):
    """Starts the one Spark JVM of the test session and returns its first
    SparkSession. Each test takes a new session from it (spark_session), so
    each gets its own catalog instance."""
    java_home = spark_java_home()
    jars = [str(artifacts.path(a, log=lambda m: print(m, file=sys.stderr))) for a in SPARK_JARS]
    # pyspark launches the JVM with $JAVA_HOME/bin/java.
    os.environ["JAVA_HOME"] = str(java_home)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    b = SparkSession.builder
    for k, v in {**SPARK_LOCAL_CONF, **SPARK_CATALOG_CONF}.items():
        b = b.config(k, v)
    b = b.config("spark.jars", ",".join(jars))
    b = b.config("spark.local.dir", str(scratch / "local"))
    b = b.config("spark.sql.warehouse.dir", str(scratch / "spark-warehouse"))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_session(base, uri: str, credential: str | None = None, conf: dict[str, str] | None = None):
    """A new SparkSession on base's JVM whose catalog `zombi` is the REST
    catalog at uri, authenticating with credential (ID:SECRET) if given,
    with conf's settings on top. Sessions share the JVM, not catalog
    instances."""
    s = base.newSession()
    s.conf.set(SPARK_URI_KEY, uri)
    if credential is not None:
        s.conf.set(SPARK_CREDENTIAL_KEY, credential)
    for k, v in (conf or {}).items():
        s.conf.set(k, v)
    return s


# Remote signing: the catalog asks Zombi to sign every S3 request, and so
# needs no S3 keys (docs/engines.md).
SPARK_REMOTE_SIGNING_CONF = {"spark.sql.catalog.zombi.header.X-Iceberg-Access-Delegation": "remote-signing"}
# Vended credentials: the catalog hands out temporary S3 keys limited to
# the table (Iceberg Java asks for them by default; docs/engines.md).
SPARK_VENDED_CREDENTIALS_CONF = {"spark.sql.catalog.zombi.header.X-Iceberg-Access-Delegation": "vended-credentials"}


def spark_live_session(base, uri: str):
    """spark_session with, beside `zombi`, the catalog `zombi_live`: the
    live view of the same server."""
    s = spark_session(base, uri)
    for k, v in SPARK_LIVE_CATALOG_CONF.items():
        s.conf.set(k, v)
    s.conf.set(SPARK_LIVE_URI_KEY, uri)
    return s


# ---------------------------------------------------------------------------
# DuckDB


def duckdb_extension_dir() -> str:
    """The extension directory that the duckdb-ext-* packages install into
    (<site-packages>/duckdb_ext/extensions/v<duckdb version>/<platform>/)."""
    import duckdb_ext  # a namespace package: the duckdb-ext-* wheels add to it

    return os.path.join(list(duckdb_ext.__path__)[0], "extensions")


# What the suite runs on a new connection; {uri} is the catalog's URI.
DUCKDB_SETUP = [
    "LOAD iceberg",
    "ATTACH '' AS zombi (TYPE iceberg, ENDPOINT '{uri}', AUTHORIZATION_TYPE 'none')",
]


def duckdb_vended_setup(uri: str, client_id: str, client_secret: str) -> list[str]:
    """What a DuckDB session runs to attach catalog zombi as OAuth2 client
    client_id, with the temporary S3 keys Zombi vends for each table."""
    return [
        "LOAD iceberg",
        f"CREATE SECRET zombi_client (TYPE iceberg, CLIENT_ID '{client_id}', CLIENT_SECRET '{client_secret}', "
        f"OAUTH2_SERVER_URI '{uri}/v1/oauth/tokens')",
        f"ATTACH '' AS zombi (TYPE iceberg, ENDPOINT '{uri}', SECRET zombi_client, "
        "ACCESS_DELEGATION_MODE 'vended_credentials')",
    ]


def duckdb_connect(uri: str):
    """An in-memory DuckDB with the REST catalog at uri attached as zombi.
    autoinstall is off so nothing is fetched from extensions.duckdb.org:
    iceberg, avro and httpfs load from the PyPI packages' directory."""
    import duckdb

    con = duckdb.connect(
        config={"extension_directory": duckdb_extension_dir(), "autoinstall_known_extensions": False}
    )
    for stmt in DUCKDB_SETUP:
        con.execute(stmt.format(uri=uri))
    return con


# ---------------------------------------------------------------------------
# Trino

# Trino 476 needs Java 24 or newer: the Temurin 25 JDK of this machine kind.
# ZOMBI_TEST_TRINO_JAVA_HOME overrides it.
TRINO_JAVA_HOME = "/usr/lib/jvm/temurin-25-jdk-amd64"
ENV_TRINO_JAVA_HOME = "ZOMBI_TEST_TRINO_JAVA_HOME"
TRINO_READY_TIMEOUT = 240.0  # seconds; about 25 s on 2 idle cores


def trino_catalog_properties(uri: str, s3=None, credential: str | None = None) -> dict[str, str]:
    """The Iceberg connector properties of catalog `zombi` (what a user puts
    in etc/catalog/zombi.properties, less connector.name=iceberg).

    Trino 476 does not configure its file system from the catalog's
    loadTable config: it takes keys from it only as vended credentials
    (with a session token), and never the endpoint, region or addressing
    style. So for an S3 warehouse Trino is the one engine told those
    settings directly, and the keys too unless credential is given: then
    Trino authenticates as that OAuth2 client (id:secret) and reads and
    writes with the temporary keys Zombi vends it."""
    props = {
        "iceberg.catalog.type": "rest",
        "iceberg.rest-catalog.uri": uri,
    }
    if credential is not None:
        props.update(
            {
                "iceberg.rest-catalog.security": "OAUTH2",
                "iceberg.rest-catalog.oauth2.credential": credential,
                "iceberg.rest-catalog.vended-credentials-enabled": "true",
            }
        )
    if s3 is None:
        props.update({"fs.native-local.enabled": "true", "local.location": "/"})
        return props
    props.update(
        {
            "fs.native-s3.enabled": "true",
            "s3.endpoint": s3.endpoint,
            "s3.region": s3.region,
            "s3.path-style-access": "true",
        }
    )
    if credential is None:
        props.update({"s3.aws-access-key": s3.access_key, "s3.aws-secret-key": s3.secret_key})
    return props


def trino_java_home() -> Path:
    home = Path(os.environ.get(ENV_TRINO_JAVA_HOME) or TRINO_JAVA_HOME)
    if not (home / "bin" / "java").is_file():
        raise RuntimeError(f"trino: no JDK at {home} (Trino 476 needs Java 24+; set ${ENV_TRINO_JAVA_HOME})")
    return home


def trino_install(log=print) -> Path:
    """The Trino server with its Iceberg plugin, unpacked once from the
    cached Maven artifacts into $ZOMBI_CACHE/trino."""
    import shutil
    import tarfile
    import tempfile
    import zipfile

    core, plugin = artifacts.TRINO_SERVER_CORE, artifacts.TRINO_ICEBERG_PLUGIN
    root = artifacts.cache_dir().parent / "trino"
    home = root / f"{core.name}-{core.version}"
    stamp = home / ".zombi-unpacked"
    if stamp.is_file():
        return home
    tar_path, zip_path = artifacts.path(core, log=log), artifacts.path(plugin, log=log)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with tarfile.open(tar_path) as tf:
            tf.extractall(tmp, filter="data")
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp / home.name / "plugin")
        shutil.rmtree(home, ignore_errors=True)
        os.replace(tmp / home.name, home)
        stamp.write_text(f"{core} + {plugin}\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return home


class TrinoError(Exception):
    """A failed Trino query: the error's name and message, then the
    messages of its causes (Trino reports an S3 refusal only as the cause
    of a connector error)."""

    def __init__(self, error: dict, sql: str):
        causes = []
        info = error.get("failureInfo") or {}
        while info.get("cause"):
            info = info["cause"]
            causes.append(info.get("message") or info.get("type") or "")
        self.name = error.get("errorName")
        self.causes = causes
        text = f"{self.name}: {error.get('message')}"
        if causes:
            text += " (caused by: " + " <- ".join(causes) + ")"
        super().__init__(f"{text} (query: {sql[:500]})")


class Trino:
    """A Trino server this test session started, spoken to over Trino's
    HTTP client protocol."""

    def __init__(self, url: str, proc, log_path: Path):
        self.url = url
        self.proc = proc
        self.log_path = log_path
        self.catalog_props: dict[str, str] | None = None

    def query(self, sql: str) -> tuple[list[str], list[list]]:
        import requests

        headers = {"X-Trino-User": "zombi-interop", "X-Trino-Time-Zone": "UTC"}
        r = requests.post(f"{self.url}/v1/statement", data=sql.encode(), headers=headers, timeout=60)
        r.raise_for_status()
        d = r.json()
        columns: list[str] = []
        rows: list[list] = []
        while True:
            if d.get("columns"):
                columns = [c["name"] for c in d["columns"]]
            rows.extend(d.get("data") or [])
            if d.get("error"):
                raise TrinoError(d["error"], sql)
            nxt = d.get("nextUri")
            if not nxt:
                return columns, rows
            d = requests.get(nxt, headers=headers, timeout=60).json()

    def use_catalog(self, props: dict[str, str]) -> None:
        """(Re)creates catalog `zombi` with props unless it already has them."""
        if self.catalog_props == props:
            return
        with_ = ", ".join(f"\"{k}\" = '{v}'" for k, v in props.items())
        self.query("DROP CATALOG IF EXISTS zombi")
        self.catalog_props = None
        self.query(f"CREATE CATALOG zombi USING iceberg WITH ({with_})")
        self.catalog_props = dict(props)

    def stop(self) -> int:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_trino(workdir: Path, port: int, preexec_fn=None) -> Trino:
    """Starts a single-node Trino (coordinator and worker) on 127.0.0.1:port
    with dynamic catalogs, and waits until it accepts queries."""
    import subprocess
    import time

    import requests

    java_home = trino_java_home()
    home = trino_install(log=lambda m: print(m, file=sys.stderr))
    etc, data = workdir / "etc", workdir / "data"
    etc.mkdir(parents=True)
    data.mkdir()
    (etc / "node.properties").write_text(
        f"node.environment=zombi_interop\nnode.id=zombi-interop\nnode.data-dir={data}\n"
    )
    (etc / "jvm.config").write_text(
        "-server\n-Xmx2G\n-XX:+UseG1GC\n-XX:+ExitOnOutOfMemoryError\n-Djdk.attach.allowAttachSelf=true\n"
    )
    (etc / "config.properties").write_text(
        "coordinator=true\n"
        "node-scheduler.include-coordinator=true\n"
        f"http-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{port}\n"
        "query.max-memory=1GB\n"
        "query.max-memory-per-node=1GB\n"
        "catalog.management=dynamic\n"
    )
    (etc / "log.properties").write_text("io.trino=WARN\n")
    env = dict(os.environ)
    env["JAVA_HOME"] = str(java_home)
    env["PATH"] = f"{java_home / 'bin'}:{env.get('PATH', '')}"
    log_path = workdir / "trino.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(home / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={data}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    t = Trino(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + TRINO_READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            info = requests.get(f"{t.url}/v1/info", timeout=2).json()
            if info.get("starting") is False:
                return t
            last = f"starting: {info.get('starting')}"
        except (requests.RequestException, ValueError) as e:
            last = repr(e)
        time.sleep(0.5)
    t.stop()
    tail = log_path.read_bytes()[-8000:].decode("utf-8", "replace")
    raise RuntimeError(
        f"trino did not become ready within {TRINO_READY_TIMEOUT:.0f}s (exit {proc.returncode}, last /v1/info: {last}); "
        f"log {log_path}:\n{tail}"
    )
