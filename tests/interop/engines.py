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
# Spark

# Spark 4.1 runs on Java 17 or 21; the suite picks the JDK explicitly rather
# than whatever `java` is on PATH. ZOMBI_TEST_SPARK_JAVA_HOME overrides it.
SPARK_JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
ENV_SPARK_JAVA_HOME = "ZOMBI_TEST_SPARK_JAVA_HOME"

SPARK_JARS = [artifacts.ICEBERG_SPARK_RUNTIME, artifacts.ICEBERG_AWS_BUNDLE]

# The catalog: these lines, plus spark.jars and the URI, are all a user sets.
SPARK_CATALOG_CONF = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "spark.sql.catalog.zombi": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.zombi.type": "rest",
}
SPARK_URI_KEY = "spark.sql.catalog.zombi.uri"

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


def spark_session(base, uri: str):
    """A new SparkSession on base's JVM whose catalog `zombi` is the REST
    catalog at uri. Sessions share the JVM, not catalog instances."""
    s = base.newSession()
    s.conf.set(SPARK_URI_KEY, uri)
    return s


# ---------------------------------------------------------------------------
# DuckDB


def duckdb_extension_dir() -> str:
    """The extension directory that the duckdb-ext-* packages install into
    (<site-packages>/duckdb_ext/extensions/v<duckdb version>/<platform>/)."""
    import duckdb_ext  # a namespace package: the duckdb-ext-* wheels add to it

    return os.path.join(list(duckdb_ext.__path__)[0], "extensions")


def duckdb_connect(uri: str, alias: str = "zombi"):
    """An in-memory DuckDB with the REST catalog at uri attached as alias.
    autoinstall is off so nothing is fetched from extensions.duckdb.org:
    iceberg, avro and httpfs load from the PyPI packages' directory."""
    import duckdb

    con = duckdb.connect(
        config={"extension_directory": duckdb_extension_dir(), "autoinstall_known_extensions": False}
    )
    con.execute("LOAD iceberg")
    con.execute(f"ATTACH '' AS {alias} (TYPE iceberg, ENDPOINT '{uri}', AUTHORIZATION_TYPE 'none')")
    return con
