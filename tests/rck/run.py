"""Runs the Apache Iceberg REST Compatibility Kit (RCK) against zombi.

    python tests/rck/run.py                  # both stores: embedded, postgres
    python tests/rck/run.py embedded         # one store
    python tests/rck/run.py --fetch          # only download the kit's jars
    python tests/rck/run.py --reference-classpath  # print the reference server's classpath

For each store it starts `zombi serve` on a free 127.0.0.1 port with a fresh
--data-dir (local warehouse under it), runs the kit's suite on OpenJDK 17
with the JUnit console launcher, stops the server with SIGTERM and prints
`rck <store>: N passed, N failed, N skipped (N total)` and the failing tests.
The exit code is 1 if a kit test failed, unless ZOMBI_RCK_ALLOW_FAIL=1 (or
--allow-fail); a run that could not happen (download, build, server start,
missing Postgres) always exits 2. README.md beside this file has the rest.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "interop"))
import artifacts  # noqa: E402  (the interop suites' pinned Maven Central downloader)

STORES = ("embedded", "postgres")
SUITE = "org.apache.iceberg.rest.RESTCompatibilityKitSuite"
DEFAULT_JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
KIT_TIMEOUT = float(os.environ.get("ZOMBI_RCK_TIMEOUT", "1800"))

# The kit creates tables at file:/tmp/<namespace>/<table> (a fixed base in
# CatalogTests). Directories of these names that a run creates under /tmp
# are removed after it; ones that existed before are left alone.
KIT_TMP_DIRS = (
    "ns", "newdb", "newdb_1", "newdb_2", "ns1", "ns2", "ns_1", "ns_2",
    "other_ns", "a", "parent", "new.db", "non-existing", "non_existing",
)  # fmt: skip


class SetupError(Exception):
    """The kit could not be run at all (not a kit test failure)."""


# ---------------------------------------------------------------------------
# Classpath


def pinned_artifacts(listing: str = "classpath.txt") -> list[artifacts.Artifact]:
    out = []
    for n, line in enumerate((HERE / listing).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        coord, sha = line.split()
        parts = coord.split(":")
        if len(parts) not in (3, 4):
            raise SetupError(f"{listing}:{n}: want group:artifact:version[:classifier], got {coord}")
        out.append(artifacts.Artifact(parts[0], parts[1], parts[2], sha, classifier=parts[3] if len(parts) == 4 else ""))
    return out


def classpath(*listings: str) -> list[Path]:
    """The jars of the listings (default: the kit's classpath.txt), fetched
    when missing."""
    pinned = [a for listing in listings or ("classpath.txt",) for a in pinned_artifacts(listing)]
    try:
        return [artifacts.path(a, log=lambda m: print(m, file=sys.stderr)) for a in pinned]
    except RuntimeError as e:
        raise SetupError(str(e)) from e


# ---------------------------------------------------------------------------
# zombi


def build_zombi(out: Path) -> Path:
    prebuilt = os.environ.get("ZOMBI_TEST_BINARY")
    if prebuilt:
        return Path(prebuilt).resolve()
    binary = out / "zombi"
    start = time.monotonic()
    res = subprocess.run(["go", "build", "-o", str(binary), "./cmd/zombi"], cwd=REPO_ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise SetupError(f"go build ./cmd/zombi failed:\n{res.stdout}{res.stderr}")
    print(f"rck: built {binary} in {time.monotonic() - start:.0f}s", file=sys.stderr)
    return binary


def server_flags(binary: Path, extra: list[str]) -> list[str]:
    """Flags every kit server gets: --allowed-locations=/tmp where this
    zombi has that flag (the kit's tables live under file:/tmp), then extra."""
    res = subprocess.run([str(binary), "serve", "-h"], capture_output=True, text=True, env=server_env())
    flags = []
    if "-allowed-locations" in res.stdout + res.stderr:
        flags.append("--allowed-locations=/tmp")
    return flags + extra


def server_env() -> dict[str, str]:
    """This environment without anything zombi reads as configuration: the
    runner passes every setting as a flag."""
    return {k: v for k, v in os.environ.items() if not (k.startswith("ZOMBI_") or k.startswith("AWS_"))}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -signal.SIGKILL
        return self.proc.returncode


def start_zombi(binary: Path, workdir: Path, args: list[str]) -> Server:
    """zombi serve on a free port with a fresh data dir, ready; the port is
    picked by binding :0, so a lost race is retried."""
    for attempt in range(3):
        port = free_port()
        data_dir = workdir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        log_path = workdir / "zombi.log"
        cmd = [
            str(binary), "serve",
            "--listen", f"127.0.0.1:{port}",
            "--data-dir", str(data_dir),
            "--log-level", "debug",
            "--shutdown-timeout", "10s",
            *args,
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            log.write(("$ " + shlex.join(cmd) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                env=server_env(), start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        server = Server(f"http://127.0.0.1:{port}", proc, log_path)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.url}/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return server
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        rc = server.stop()
        text = log_path.read_text(errors="replace")
        if "address already in use" not in text:
            raise SetupError(f"zombi did not become ready (exit {rc}); log {log_path}:\n{text[-4000:]}")
    raise SetupError(f"zombi could not get a free port; log {log_path}")


# ---------------------------------------------------------------------------
# Postgres


@dataclass
class FreshDatabase:
    """A database of its own on $ZOMBI_TEST_POSTGRES_URL, dropped on close."""

    admin_url: str
    name: str = field(default_factory=lambda: f"zombi_rck_{os.getpid()}_{secrets.token_hex(4)}")

    def __enter__(self) -> str:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        except psycopg.Error as e:
            raise SetupError(f"creating database {self.name} on $ZOMBI_TEST_POSTGRES_URL: {e}") from e
        if "://" in self.admin_url:
            u = urllib.parse.urlsplit(self.admin_url)
            return urllib.parse.urlunsplit(u._replace(path="/" + self.name))
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.admin_url, dbname=self.name)

    def __exit__(self, *exc) -> None:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
        except psycopg.Error as e:
            print(f"rck: warning: could not drop database {self.name}: {e}", file=sys.stderr)


# ---------------------------------------------------------------------------
# The kit


def java_binary() -> str:
    home = os.environ.get("ZOMBI_RCK_JAVA_HOME") or DEFAULT_JAVA_HOME
    java = Path(home) / "bin" / "java"
    if not java.is_file():
        raise SetupError(f"no Java 17 at {home} (set ZOMBI_RCK_JAVA_HOME; scripts/test.sh installs openjdk-17)")
    return str(java)


def run_kit(jars: list[Path], url: str, workdir: Path) -> tuple[int, float]:
    """The kit's suite against url; JUnit XML into workdir/reports, the
    console output into workdir/kit.log. Returns (exit code, seconds)."""
    reports = workdir / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    # RCKUtils turns every system property into a catalog property and
    # reads the client's uri and warehouse without the rck. prefix (the
    # kit's Gradle build passes both spellings). rck.local=false keeps the
    # kit from starting its own server; RESTServerExtension reads it as a
    # JUnit configuration parameter, which falls back to system properties.
    props = {
        "rck.local": "false",
        "rck.uri": url + "/",
        "uri": url + "/",
        "rck.warehouse": "rck_warehouse",
        "warehouse": "rck_warehouse",
        "rck.requires-namespace-create": "true",
        "rck.supports-serverside-retry": "true",
        # zombi takes dots in names (its namespace separator is %1F):
        # without this the kit skips its two dotted-name tests.
        "rck.supports-names-with-dot": "true",
    }
    cmd = [
        java_binary(),
        *(f"-D{k}={v}" for k, v in props.items()),
        *shlex.split(os.environ.get("ZOMBI_RCK_JAVA_OPTS", "")),  # e.g. -Drck.overrides-requested-location=true
        "-cp", os.pathsep.join(str(j) for j in jars),
        "org.junit.platform.console.ConsoleLauncher", "execute",
        "--select-class", SUITE,
        "--config", "rck.local=false",
        "--reports-dir", str(reports),
        "--details", "tree",
        "--disable-banner",
        "--disable-ansi-colors",
    ]  # fmt: skip
    # CATALOG_* variables would become catalog properties too: drop them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    start = time.monotonic()
    with open(workdir / "kit.log", "wb") as log:
        log.write(("$ " + shlex.join(cmd) + "\n").encode())
        log.flush()
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env, timeout=KIT_TIMEOUT, preexec_fn=die_with_parent).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            raise SetupError(f"the kit did not finish within {KIT_TIMEOUT:.0f}s; its output: {workdir / 'kit.log'}")
    return rc, time.monotonic() - start


@dataclass
class Result:
    name: str  # Class.method()
    outcome: str  # passed, failed, skipped
    message: str = ""


def read_reports(reports: Path) -> list[Result]:
    """Test cases from the launcher's JUnit XML. A test of a class whose
    setup failed is reported there as failed with the setup's error."""
    results = []
    for f in sorted(reports.glob("TEST-*.xml")):
        for tc in ET.parse(f).getroot().iter("testcase"):
            name = f"{tc.get('classname', '').rsplit('.', 1)[-1]}.{tc.get('name')}"
            outcome, message = "passed", ""
            for child in tc:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = "skipped" if child.tag == "skipped" else "failed"
                    message = child.get("message") or (child.text or "")
                    if child.tag == "skipped":  # the reason is in the text, before the stack
                        message = (child.text or "").split("\n\tat ", 1)[0]
                        message = message.replace("org.junit.AssumptionViolatedException: ", "")
                    break
            results.append(Result(name, outcome, " ".join(message.split())))
    return results


def cleanup_kit_dirs(before: set[str]) -> None:
    for name in KIT_TMP_DIRS:
        p = Path("/tmp") / name
        if name not in before and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def run_store(store: str, binary: Path, flags: list[str], jars: list[Path], out: Path) -> list[Result]:
    workdir = out / store
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    with _store_args(store) as args:
        server = start_zombi(binary, workdir, args + flags)
        before = {n for n in KIT_TMP_DIRS if (Path("/tmp") / n).exists()}
        try:
            rc, secs = run_kit(jars, server.url, workdir)
        finally:
            stop_rc = server.stop()
            cleanup_kit_dirs(before)
    results = read_reports(workdir / "reports")
    if not results:
        raise SetupError(f"the kit ran no test (launcher exit {rc}); its output: {workdir / 'kit.log'}")
    if stop_rc != 0:
        results.append(Result("zombi.shutdown", "failed", f"zombi exited {stop_rc} on SIGTERM; log {server.log_path}"))
    count = {o: sum(1 for r in results if r.outcome == o) for o in ("passed", "failed", "skipped")}
    print(f"rck {store}: {count['passed']} passed, {count['failed']} failed, {count['skipped']} skipped ({len(results)} total)")
    print(f"    {secs:.0f}s; XML reports, kit output and server log in {workdir}")
    for r in sorted(results, key=lambda r: r.name):
        if r.outcome != "passed":
            tag = "FAILED " if r.outcome == "failed" else "skipped"
            print(f"    {tag} {r.name}: {r.message[:200]}")
    sys.stdout.flush()
    return results


class _store_args:
    """The store's zombi flags, with a fresh Postgres database for postgres."""

    def __init__(self, store: str):
        self.store, self.db = store, None

    def __enter__(self) -> list[str]:
        if self.store == "embedded":
            return []
        url = os.environ.get("ZOMBI_TEST_POSTGRES_URL")
        if not url:
            raise SetupError(
                "the postgres store needs $ZOMBI_TEST_POSTGRES_URL: run scripts/test.sh, or start "
                "`go run ./internal/testenv/cmd/zombi-testenv` and source the exports it prints"
            )
        self.db = FreshDatabase(url)
        return ["--postgres-url", self.db.__enter__()]

    def __exit__(self, *exc) -> None:
        if self.db is not None:
            self.db.__exit__(*exc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stores", nargs="*", metavar="store", help=f"{' or '.join(STORES)} (default: both)")
    ap.add_argument("--fetch", action="store_true", help="only download the pinned jars")
    ap.add_argument("--reference-classpath", action="store_true", help="fetch what Iceberg's reference REST server (org.apache.iceberg.rest.RESTCatalogServer) needs and print its classpath")  # fmt: skip
    ap.add_argument("--out", type=Path, help="where reports and logs go (default $ZOMBI_CACHE/rck)")
    ap.add_argument("--server-flag", action="append", default=[], help="extra zombi serve flag, as --server-flag=--name=value (repeatable; also $ZOMBI_RCK_SERVER_FLAGS)")  # fmt: skip
    ap.add_argument("--allow-fail", action="store_true", default=os.environ.get("ZOMBI_RCK_ALLOW_FAIL") == "1", help="exit 0 even if kit tests fail (also ZOMBI_RCK_ALLOW_FAIL=1)")  # fmt: skip
    opts = ap.parse_args()
    for s in opts.stores:
        if s not in STORES:
            ap.error(f"unknown store {s!r}: want {' or '.join(STORES)}")
    try:
        if opts.reference_classpath:
            print(os.pathsep.join(str(j) for j in classpath("classpath.txt", "reference-server.txt")))
            return 0
        jars = classpath()
        if opts.fetch:
            size = sum(j.stat().st_size for j in jars)
            print(f"rck: {len(jars)} jars, {size / 1e6:.0f} MB, in {artifacts.cache_dir()}")
            return 0
        out = (opts.out or Path(artifacts.cache_dir()).parent / "rck").resolve()
        out.mkdir(parents=True, exist_ok=True)
        binary = build_zombi(out)
        flags = server_flags(binary, shlex.split(os.environ.get("ZOMBI_RCK_SERVER_FLAGS", "")) + opts.server_flag)
        print(f"rck: zombi serve flags: {shlex.join(flags) or '(none)'}", file=sys.stderr)
        failed = 0
        for store in opts.stores or STORES:
            failed += sum(1 for r in run_store(store, binary, flags, jars, out) if r.outcome == "failed")
    except SetupError as e:
        print(f"rck: {e}", file=sys.stderr)
        return 2
    if failed and opts.allow_fail:
        print(f"rck: {failed} failed, allowed by ZOMBI_RCK_ALLOW_FAIL / --allow-fail")
        return 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
