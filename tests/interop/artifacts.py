"""Maven Central artifacts the engine suites need, pinned by version and
SHA-256, downloaded once into ${ZOMBI_CACHE:-$HOME/.cache/zombi}/maven.

    python tests/interop/artifacts.py      # fetch every artifact (scripts/test.sh does this)

The fixtures call path() for each artifact they use, which downloads a
missing one, so a by-hand pytest run on a fresh machine works too. A file
whose checksum differs from the pin is never used: the download is
discarded and the run fails.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str
    sha256: str
    ext: str = "jar"
    classifier: str = ""  # e.g. "tests": name-version-tests.jar

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.name}-{self.version}{suffix}.{self.ext}"

    @property
    def relpath(self) -> str:
        return f"{self.group.replace('.', '/')}/{self.name}/{self.version}/{self.filename}"

    def __str__(self) -> str:
        suffix = f":{self.classifier}" if self.classifier else ""
        return f"{self.group}:{self.name}:{self.version}{suffix}"


# Spark 4.1 (pyspark in requirements.txt) with the Iceberg runtime built for
# it, and Iceberg's AWS bundle for S3FileIO (the AWS SDK v2 it needs).
ICEBERG_SPARK_RUNTIME = Artifact(
    "org.apache.iceberg",
    "iceberg-spark-runtime-4.1_2.13",
    "1.12.0",
    "3123c3798af642dd537230923548e013ef41cc28b6626e5225808cf5670a0f82",
)
ICEBERG_AWS_BUNDLE = Artifact(
    "org.apache.iceberg",
    "iceberg-aws-bundle",
    "1.12.0",
    "dd7e49ffa4ac9b215bed846581991259e3aec9bb2fa08d6cec029c46cd66d957",
)

# Trino 476, the newest release on Maven Central: the core server (no
# connectors) plus the Iceberg connector plugin, 0.5 GB together instead of
# the 0.8 GB full server with every connector.
TRINO_SERVER_CORE = Artifact(
    "io.trino",
    "trino-server-core",
    "476",
    "0f388f9967c177ae70a47c099082fc95387f0c3cb96d8000d1d41fc3a5223158",
    ext="tar.gz",
)
TRINO_ICEBERG_PLUGIN = Artifact(
    "io.trino",
    "trino-iceberg",
    "476",
    "99edba5b491ed94d599aeb61e0794272d3569d8b563f3bb8569e8a49daa87b6c",
    ext="zip",
)

ALL = [ICEBERG_SPARK_RUNTIME, ICEBERG_AWS_BUNDLE, TRINO_SERVER_CORE, TRINO_ICEBERG_PLUGIN]


def cache_dir() -> Path:
    root = os.environ.get("ZOMBI_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "zombi")
    return Path(root) / "maven"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path(a: Artifact, log=print) -> Path:
    """The local path of a, downloaded and checked first if it is not in
    the cache. Raises RuntimeError on a failed download or a checksum that
    differs from the pin."""
    dest = cache_dir() / a.relpath
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    url = f"{MAVEN_CENTRAL}/{a.relpath}"
    log(f"artifacts: downloading {a} from {url}")
    start = time.monotonic()
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
            except OSError as e:
                raise RuntimeError(f"artifacts: downloading {url}: {e}") from e
        got = _sha256(Path(tmp))
        if got != a.sha256:
            raise RuntimeError(f"artifacts: {url} has SHA-256 {got}, pinned {a.sha256}; not using it")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    size = dest.stat().st_size
    log(f"artifacts: {a}: {size / 1e6:.0f} MB in {time.monotonic() - start:.1f}s")
    return dest


def main() -> int:
    try:
        for a in ALL:
            p = path(a, log=lambda m: print(m, file=sys.stderr))
            print(p)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
