"""Fixtures for the engine interop suites: a real zombi server per shape.

The zombi binary is built once per pytest session from the repository this
file lives in. Each server shape is started once per session on a free
127.0.0.1 port with a fresh --data-dir, and every test that asks for the
`zombi` fixture runs once per shape:

  embedded     embedded pointer store + local warehouse under the data dir
  postgres-s3  Postgres pointer store (a fresh database on
               $ZOMBI_TEST_POSTGRES_URL) + warehouse s3://<fresh bucket>/wh on
               the S3-compatible server at $ZOMBI_TEST_S3_ENDPOINT, with the
               static keys vended to clients in loadTable config

The postgres-s3 shape FAILS (it is never skipped) when its environment is
missing: scripts/test.sh provides it.

`zombi_cluster` (test_cluster.py) is the postgres-s3 shape on several
nodes: three `zombi serve --cluster` processes on one fresh database and
bucket, behind HAProxy (round robin, /health/ready checks), started once
per session when a test asks for it.

Engine fixtures: `spark` (a new SparkSession per test on one Spark JVM per
pytest session, catalog `zombi` at the test's server), `duck` (DuckDB with
the server attached as `zombi`), `trino` (one Trino server per pytest
session, catalog `zombi` re-created for the test's server) and `catalog`
(PyIceberg). Any skipped test is reported as failed, and the terminal
summary counts scenarios per engine.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPES = ("embedded", "postgres-s3")

ENV_BINARY = "ZOMBI_TEST_BINARY"  # optional: a zombi binary to test instead of building one
ENV_POSTGRES_URL = "ZOMBI_TEST_POSTGRES_URL"
ENV_S3_ENDPOINT = "ZOMBI_TEST_S3_ENDPOINT"
ENV_S3_ACCESS_KEY = "ZOMBI_TEST_S3_ACCESS_KEY"
ENV_S3_SECRET_KEY = "ZOMBI_TEST_S3_SECRET_KEY"
ENV_S3_REGION = "ZOMBI_TEST_S3_REGION"  # optional, default us-east-1
# MinIO, the S3 server with an STS, for vended credentials (postgres-minio).
ENV_MINIO_ENDPOINT = "ZOMBI_TEST_MINIO_ENDPOINT"
ENV_MINIO_ACCESS_KEY = "ZOMBI_TEST_MINIO_ACCESS_KEY"
ENV_MINIO_SECRET_KEY = "ZOMBI_TEST_MINIO_SECRET_KEY"

READY_TIMEOUT = 60.0  # seconds for /health/ready after start
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
LOG_SECTION_LIMIT = 64 << 10  # bytes of server log attached to a failed test

# The client side must get its S3 settings from the catalog alone (loadTable
# config), never from the environment or ~/.aws: drop what the AWS SDK
# underneath pyarrow would otherwise pick up. This process is the test
# runner, so changing its environment affects nothing else.
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@dataclass(frozen=True)
class S3Target:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str
    bucket: str

    def filesystem(self):
        """A pyarrow S3 filesystem with the test credentials (path style)."""
        from pyarrow import fs as pafs

        u = urllib.parse.urlsplit(self.endpoint)
        return pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            scheme=u.scheme or "http",
            endpoint_override=u.netloc,
            force_virtual_addressing=False,
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
        )


def _read_log(path: Path, since: int = 0, limit: int = LOG_SECTION_LIMIT) -> str:
    """A process's log file from byte since on, its last limit bytes."""
    try:
        with open(path, "rb") as f:
            f.seek(since)
            data = f.read()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    if len(data) > limit:
        data = b"... (cut) ...\n" + data[-limit:]
    return data.decode("utf-8", "replace")


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class Unavailable:
    """A shape whose environment is missing: its tests fail with reason."""

    shape: str
    reason: str


@dataclass
class Zombi:
    """A running zombi server of one shape."""

    shape: str
    url: str  # http://127.0.0.1:PORT
    warehouse: str  # file:///... or s3://bucket/wh as the server was told
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen
    s3: S3Target | None = None
    extra: dict = field(default_factory=dict)

    # -- logs ---------------------------------------------------------------

    def log_size(self) -> int:
        return _log_size(self.log_path)

    def log_text(self, since: int = 0, limit: int = LOG_SECTION_LIMIT) -> str:
        return _read_log(self.log_path, since, limit)

    def check_alive(self) -> None:
        rc = self.proc.poll()
        if rc is not None:
            pytest.fail(
                f"zombi ({self.shape}) exited with code {rc}; log {self.log_path}:\n{self.log_text()}",
                pytrace=False,
            )

    # -- storage --------------------------------------------------------------

    def files_under(self, location: str) -> list[str]:
        """Every file below a table location (file:// or s3://), as URIs,
        sorted. Reads storage directly, not through the catalog."""
        loc = location.rstrip("/")
        u = urllib.parse.urlsplit(loc)
        if u.scheme in ("", "file"):
            root = Path(urllib.parse.unquote(u.path))
            if not root.exists():
                return []
            return sorted(p.as_uri() for p in root.rglob("*") if p.is_file())
        if u.scheme in ("s3", "s3a", "s3n"):
            assert self.s3 is not None, f"{self.shape}: s3 location {loc} on a server without S3"
            from pyarrow import fs as pafs

            fs = self.s3.filesystem()
            base = f"{u.netloc}{u.path}"
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            return sorted(f"s3://{i.path}" for i in infos if i.type == pafs.FileType.File)
        raise AssertionError(f"{self.shape}: unexpected location scheme in {loc!r}")

    # -- REST ------------------------------------------------------------------

    def catalog(self, name: str | None = None, **props: str):
        """A fresh PyIceberg REST catalog configured with nothing but the
        type and the URI (and props, such as scan-planning-mode): everything
        else must come from the server."""
        from pyiceberg.catalog import load_catalog

        import engines

        return load_catalog(name or f"zombi-{self.shape}", **engines.PYICEBERG_CATALOG_CONF, uri=self.url, **props)

    def live_catalog(self, name: str | None = None, **props: str):
        """A fresh PyIceberg REST catalog on the live view: the catalog
        configuration above plus warehouse=live, as docs/engines.md shows."""
        from pyiceberg.catalog import load_catalog

        import engines

        return load_catalog(name or f"zombi-live-{self.shape}", **engines.PYICEBERG_LIVE_CATALOG_CONF, uri=self.url, **props)

    def table_url(self, namespace: str, table: str) -> str:
        ns = urllib.parse.quote(namespace, safe="")
        tb = urllib.parse.quote(table, safe="")
        return f"{self.url}/v1/namespaces/{ns}/tables/{tb}"

    def rest_table(self, namespace: str, table: str) -> dict | None:
        """The loadTable response for namespace.table (a one-level
        namespace), or None on 404: the catalog's own view, whatever an
        engine's cache says."""
        r = requests.get(self.table_url(namespace, table), timeout=30)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def client_token(self, role: str) -> str:
        """A token from /v1/oauth/tokens for the server's OAuth2 client of
        role (extra["clients"]), as an engine given its credential takes
        one."""
        c = self.extra["clients"][role]
        r = requests.post(
            f"{self.url}/v1/oauth/tokens",
            data={"grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret, "scope": "catalog"},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def metric(self, series: str, headers: dict[str, str] | None = None) -> float:
        """The value of one Prometheus series from /metrics, written as it
        appears there (name{labels}); 0 if the server has not exported it
        yet. headers: the Authorization a server with auth on asks for."""
        r = requests.get(f"{self.url}/metrics", headers=headers, timeout=30)
        r.raise_for_status()
        for line in r.text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == series:
                return float(value)
        return 0.0


# ---------------------------------------------------------------------------
# Build


@pytest.fixture(scope="session")
def zombi_binary(tmp_path_factory) -> Path:
    """go build -o <tmp>/zombi ./cmd/zombi, once per session; or the binary
    at $ZOMBI_TEST_BINARY if that is set (already built by the caller)."""
    prebuilt = os.environ.get(ENV_BINARY)
    if prebuilt:
        p = Path(prebuilt).resolve()
        if not (p.is_file() and os.access(p, os.X_OK)):
            pytest.fail(f"${ENV_BINARY}={prebuilt} is not an executable file", pytrace=False)
        return p
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the interop suite builds zombi from source", pytrace=False)
    out = tmp_path_factory.mktemp("bin") / "zombi"
    start = time.monotonic()
    res = subprocess.run(
        [go, "build", "-o", str(out), "./cmd/zombi"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.fail(
            f"go build ./cmd/zombi failed in {REPO_ROOT} (exit {res.returncode}):\n{res.stdout}{res.stderr}",
            pytrace=False,
        )
    print(f"\nbuilt {out} in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return out


# ---------------------------------------------------------------------------
# Server processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict[str, str]:
    """The test's environment without anything zombi reads as configuration
    (ZOMBI_* flags, AWS_* credentials): the fixtures pass every setting as a
    flag, so a developer's shell cannot change what is tested."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("ZOMBI_") or k.startswith("AWS_"))
    }


def _die_with_parent() -> None:
    """In the child before exec: have the kernel SIGKILL the server if pytest
    dies without tearing its fixtures down (Linux only; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -signal.SIGKILL
    return proc.returncode


def _start(binary: Path, shape: str, workdir: Path, args: list[str], **kw) -> Zombi:
    """Starts zombi with args on a free port and waits for /health/ready.
    The port is picked by binding :0 and closing it, so another process can
    take it first: retried a few times."""
    failures = []
    for attempt in range(3):
        port = _free_port()
        data_dir = workdir / f"data-{attempt}"
        data_dir.mkdir()
        log_path = workdir / f"zombi-{attempt}.log"
        url = f"http://127.0.0.1:{port}"
        cmd = [
            str(binary),
            "serve",
            "--listen", f"127.0.0.1:{port}",
            "--data-dir", str(data_dir),
            "--log-level", "debug",
            "--shutdown-timeout", "10s",
            # Plans of more than one manifest come in pages: the engines
            # fetch plan tasks (test_planning.py).
            "--plan-page-files", "2",
            *args,
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=_server_env(),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        z = Zombi(shape=shape, url=url, data_dir=data_dir, log_path=log_path, proc=proc, **kw)
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no response"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                r = requests.get(f"{url}/health/ready", timeout=2)
                if r.status_code == 200:
                    return z
                last = f"HTTP {r.status_code}: {r.text[:500]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        rc = _stop(proc)
        log = z.log_text()
        failures.append(f"attempt {attempt + 1}: exit {rc}, last /health/ready: {last}\n{log}")
        if "address already in use" not in log:
            break
    pytest.fail(
        f"zombi ({shape}) did not become ready within {READY_TIMEOUT:.0f}s:\n" + "\n".join(failures),
        pytrace=False,
    )


def _missing_postgres_s3_env(shape: str = "postgres-s3") -> list[str]:
    """The environment variables of shape (postgres-s3 or postgres-minio)
    that are not set."""
    required = [ENV_POSTGRES_URL, ENV_S3_ENDPOINT, ENV_S3_ACCESS_KEY, ENV_S3_SECRET_KEY]
    if shape == "postgres-minio":
        required = [ENV_POSTGRES_URL, ENV_MINIO_ENDPOINT, ENV_MINIO_ACCESS_KEY, ENV_MINIO_SECRET_KEY]
    return [k for k in required if not os.environ.get(k)]


def _missing_env_message(missing: list[str]) -> str:
    return (
        f"the postgres-s3 shape needs {', '.join(missing)} "
        f"(a Postgres server URL, an S3-compatible endpoint and its keys). "
        f"Run the interop suite through the project's test command, scripts/test.sh, "
        f"which starts Postgres and an S3 server and exports them; "
        f"or run only the embedded shape: pytest tests/interop -k embedded"
    )


def _with_dbname(url: str, dbname: str) -> str:
    """The Postgres connection string url, pointed at database dbname (URL or
    key=value form)."""
    if "://" in url:
        u = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(u._replace(path="/" + dbname))
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session", params=SHAPES)
def zombi_server(request, zombi_binary, tmp_path_factory):
    yield from _serve(request.param, zombi_binary, tmp_path_factory, [])


# The second server's flags (zombi_manual_flush).
MANUAL_FLUSH_ARGS = ["--flush-interval", "1h", "--live-pin-window", "1s"]


@pytest.fixture(scope="session")
def zombi_manual_flush_server(zombi_server, zombi_binary, tmp_path_factory):
    """A second server of zombi_server's shape, started when a test asks
    for it: it commits only when asked (--flush-interval 1h), and its live
    view reads a snapshot replaced more than a second ago exactly
    (--live-pin-window 1s; the default is a minute), so that time travel on
    the live catalog needs no long wait."""
    yield from _serve(zombi_server.shape, zombi_binary, tmp_path_factory, MANUAL_FLUSH_ARGS)


def _serve(shape: str, binary: Path, tmp_path_factory, flags: list[str], name: str = "zombi", **kw):
    """Starts a server of shape with flags, yields it and stops it."""
    workdir = tmp_path_factory.mktemp(f"{name}-{shape}")
    cleanups = []
    try:
        if shape == "embedded":
            z = _start(binary, shape, workdir, flags, warehouse="", **kw)
            z.warehouse = (z.data_dir / "warehouse").as_uri()
        else:
            missing = _missing_postgres_s3_env(shape)
            if missing:
                # Not a setup error: every test of this shape FAILS in its
                # call phase (see pytest_runtest_call) with this message.
                yield Unavailable(shape, _missing_env_message(missing))
                return
            z = _start_postgres_s3(binary, workdir, cleanups, flags, minio=shape == "postgres-minio", **kw)
        cleanups.append(lambda: _finish(z))
        yield z
    finally:
        errors = []
        for fn in reversed(cleanups):
            try:
                fn()
            except Exception as e:  # report all, raise after
                errors.append(e)
        if errors:
            raise errors[0]


# ---------------------------------------------------------------------------
# A server with auth on: OAuth2 clients that engines configure with
# credential=ID:SECRET, and a static admin token for the suite's own calls.

# Tokens live a few seconds, so that a test sees clients refresh them.
AUTH_TOKEN_LIFETIME = 6.0


@dataclass(frozen=True)
class OAuthClient:
    id: str
    secret: str

    @property
    def credential(self) -> str:
        return f"{self.id}:{self.secret}"


def _oauth_client_flag(binary: Path, client: OAuthClient, role: str) -> str:
    """The --oauth-client value for client, made by `zombi oauth-client`."""
    out = subprocess.run(
        [str(binary), "oauth-client", "-secret-stdin", client.id, role],
        input=client.secret + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split("--oauth-client '", 1)[1].rsplit("'", 1)[0]


@pytest.fixture(scope="session", params=SHAPES)
def zombi_auth_server(request, zombi_binary, tmp_path_factory):
    """A server of each shape with auth on: clients `writer` (writer role)
    and `reader` (reader role) in extra["clients"], and an admin bearer
    token in extra["admin"]."""
    clients = {role: OAuthClient(f"{role}-client", secrets.token_urlsafe(24)) for role in ("writer", "reader")}
    admin = secrets.token_urlsafe(24)
    args = ["--auth-token", f"{admin}:admin", "--token-lifetime", f"{AUTH_TOKEN_LIFETIME:.0f}s", "--token-clock-skew", "0s"]
    for role, c in clients.items():
        args += ["--oauth-client", _oauth_client_flag(zombi_binary, c, role)]
    yield from _serve(request.param, zombi_binary, tmp_path_factory, args, name="zombi-auth",
                      extra={"clients": clients, "admin": admin})


@pytest.fixture
def zombi_auth(request, zombi_auth_server):
    """The auth server of this test's shape (see zombi)."""
    yield from _for_test(request, zombi_auth_server)


@pytest.fixture(scope="session")
def zombi_sts_server(zombi_binary, tmp_path_factory):
    """A server of shape postgres-minio: a fresh database and a bucket on
    MinIO, vending temporary credentials from MinIO's STS (--s3-sts) to
    clients that ask for vended credentials, with auth on as
    zombi_auth_server has it."""
    clients = {role: OAuthClient(f"{role}-client", secrets.token_urlsafe(24)) for role in ("writer", "reader")}
    admin = secrets.token_urlsafe(24)
    args = ["--auth-token", f"{admin}:admin"]
    for role, c in clients.items():
        args += ["--oauth-client", _oauth_client_flag(zombi_binary, c, role)]
    yield from _serve("postgres-minio", zombi_binary, tmp_path_factory, args, name="zombi-sts",
                      extra={"clients": clients, "admin": admin})


@pytest.fixture
def zombi_sts(request, zombi_sts_server):
    """zombi_sts_server for one test (see zombi)."""
    yield from _for_test(request, zombi_sts_server)


def _finish(z: Zombi) -> None:
    rc = _stop(z.proc)
    print(f"\nzombi ({z.shape}) stopped with exit code {rc}; log: {z.log_path}", file=sys.stderr)
    if rc != 0:
        pytest.fail(
            f"zombi ({z.shape}) did not shut down cleanly on SIGTERM (exit {rc}); log:\n{z.log_text()}",
            pytrace=False,
        )


def _remove_bucket(s3: S3Target) -> None:
    """Deletes the session's bucket: files first, then directories deepest
    first (a posix-backed server refuses to delete a non-empty directory
    object, and pyarrow's delete_dir batches them in no useful order). A
    failure only warns: the S3 server belongs to the caller."""
    from pyarrow import fs as pafs

    fs = s3.filesystem()
    try:
        infos = fs.get_file_info(pafs.FileSelector(s3.bucket, recursive=True, allow_not_found=True))
        for i in infos:
            if i.type == pafs.FileType.File:
                fs.delete_file(i.path)
        dirs = [i.path for i in infos if i.type == pafs.FileType.Directory]
        for d in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
            if fs.get_file_info(d).type == pafs.FileType.Directory:
                fs.delete_dir(d)
        fs.delete_dir(s3.bucket)
    except OSError as e:
        print(f"\nwarning: could not remove bucket {s3.bucket} at {s3.endpoint}: {e}", file=sys.stderr)


def _start_postgres_s3(binary: Path, workdir: Path, cleanups: list, flags: list[str] = (), minio: bool = False,
                       **kw) -> Zombi:
    args, warehouse, s3 = _postgres_s3_storage(cleanups, minio)
    shape = "postgres-minio" if minio else "postgres-s3"
    return _start(binary, shape, workdir, [*args, *flags], warehouse=warehouse, s3=s3, **kw)


def _postgres_s3_storage(cleanups: list, minio: bool = False) -> tuple[list[str], str, S3Target]:
    """A fresh database on $ZOMBI_TEST_POSTGRES_URL and a fresh bucket on
    the S3 server, removed by cleanups; returns the server flags that point
    zombi at them, the warehouse and the bucket. With minio the bucket is
    on MinIO and zombi vends temporary credentials from its STS (--s3-sts)
    instead of its keys."""
    import psycopg
    from psycopg import sql

    suffix = f"{os.getpid()}_{secrets.token_hex(4)}"

    # A fresh database for this session.
    admin_url = os.environ[ENV_POSTGRES_URL]
    dbname = f"zombi_interop_{suffix}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.Error as e:
        pytest.fail(f"postgres-s3: creating database {dbname} on ${ENV_POSTGRES_URL}: {e}", pytrace=False)

    def drop_db():
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    cleanups.append(drop_db)

    # A fresh bucket for this session.
    s3 = S3Target(
        endpoint=os.environ[ENV_S3_ENDPOINT].rstrip("/"),
        access_key=os.environ[ENV_S3_ACCESS_KEY],
        secret_key=os.environ[ENV_S3_SECRET_KEY],
        region=os.environ.get(ENV_S3_REGION) or "us-east-1",
        bucket=f"zombi-interop-{suffix.replace('_', '-')}",
    )
    if minio:
        s3 = S3Target(
            endpoint=os.environ[ENV_MINIO_ENDPOINT].rstrip("/"),
            access_key=os.environ[ENV_MINIO_ACCESS_KEY],
            secret_key=os.environ[ENV_MINIO_SECRET_KEY],
            region="us-east-1",
            bucket=s3.bucket,
        )
    fs = s3.filesystem()
    try:
        fs.create_dir(s3.bucket)
    except OSError as e:
        pytest.fail(f"postgres-s3: creating bucket {s3.bucket} at {s3.endpoint}: {e}", pytrace=False)
    cleanups.append(lambda: _remove_bucket(s3))

    warehouse = f"s3://{s3.bucket}/wh"
    args = [
        "--postgres-url", _with_dbname(admin_url, dbname),
        "--warehouse", warehouse,
        "--s3-endpoint", s3.endpoint,
        "--s3-region", s3.region,
        "--s3-access-key", s3.access_key,
        "--s3-secret-key", s3.secret_key,
        "--s3-path-style=true",
        "--s3-sts" if minio else "--s3-vend-static-keys",
    ]  # fmt: skip
    return args, warehouse, s3


# ---------------------------------------------------------------------------
# Several nodes behind a load balancer

CLUSTER_NODES = 3
HAPROXY_READY_TIMEOUT = 10.0  # seconds


@dataclass
class HAProxy:
    """HAProxy in the foreground (-db), in front of some zombi nodes."""

    url: str  # http://127.0.0.1:PORT
    config_path: Path
    log_path: Path
    proc: subprocess.Popen

    def log_size(self) -> int:
        return _log_size(self.log_path)

    def log_text(self, since: int = 0, limit: int = LOG_SECTION_LIMIT) -> str:
        return _read_log(self.log_path, since, limit)


@dataclass
class Cluster:
    """CLUSTER_NODES `zombi serve --cluster` nodes on one Postgres database
    and one bucket, with HAProxy in front: clients use url, the balancer's."""

    shape: str
    url: str
    nodes: list[Zombi]
    balancer: HAProxy
    warehouse: str
    s3: S3Target

    def check_alive(self) -> None:
        for z in self.nodes:
            z.check_alive()
        rc = self.balancer.proc.poll()
        if rc is not None:
            pytest.fail(
                f"haproxy exited with code {rc}; log {self.balancer.log_path}:\n{self.balancer.log_text()}",
                pytrace=False,
            )

    def logs(self) -> list[tuple[str, Path, object]]:
        """(name, log path, process) of every process of the cluster."""
        out = [(f"zombi node n{i + 1}", z.log_path, z) for i, z in enumerate(self.nodes)]
        return out + [("haproxy", self.balancer.log_path, self.balancer)]


def _haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if found is None:
        pytest.fail("haproxy is not installed (scripts/test.sh installs Debian's package)", pytrace=False)
    return found


def _haproxy_config(listen: str, backends: list[str]) -> str:
    """Round robin over backends (host:port), each checked with GET
    /health/ready every 200 ms: out after two failed checks, back after one
    good one. A request is sent to another backend only when its connection
    failed, never once it was sent. The configuration of
    internal/testenv/haproxy.go (the Go cluster test's balancer)."""
    servers = "".join(f"\tserver n{i + 1} {b} check\n" for i, b in enumerate(backends))
    return f"""global
\tmaxconn 4096

defaults
\tmode http
\ttimeout connect 2s
\ttimeout client 60s
\ttimeout server 60s
\tretries 3
\tretry-on conn-failure
\toption redispatch
\toption http-keep-alive

frontend zombi
\tbind {listen}
\tdefault_backend nodes

backend nodes
\tbalance roundrobin
\toption httpchk GET /health/ready
\tdefault-server inter 200ms fall 2 rise 1
{servers}"""


def _start_haproxy(workdir: Path, backends: list[str]) -> HAProxy:
    """Starts HAProxy in the foreground on a free 127.0.0.1 port in front
    of backends and waits until every backend answers /health/ready through
    it. Retried on another port if the one picked was taken meanwhile."""
    binary = _haproxy_binary()
    failures = []
    for attempt in range(3):
        port = _free_port()
        cfg = workdir / f"haproxy-{attempt}.cfg"
        cfg.write_text(_haproxy_config(f"127.0.0.1:{port}", backends))
        log_path = workdir / f"haproxy-{attempt}.log"
        cmd = [binary, "-db", "-f", str(cfg)]
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        h = HAProxy(url=f"http://127.0.0.1:{port}", config_path=cfg, log_path=log_path, proc=proc)
        # Round robin: as many good answers in a row as there are backends
        # means each one answered through the balancer.
        deadline = time.monotonic() + HAPROXY_READY_TIMEOUT
        good, last = 0, "no response"
        while time.monotonic() < deadline and proc.poll() is None and good < len(backends):
            try:
                r = requests.get(f"{h.url}/health/ready", timeout=2)
                good = good + 1 if r.status_code == 200 else 0
                last = f"HTTP {r.status_code}: {r.text[:500]}"
            except requests.RequestException as e:
                good, last = 0, repr(e)
            if good < len(backends):
                time.sleep(0.05)
        if good >= len(backends):
            return h
        rc = _stop(proc)
        failures.append(f"attempt {attempt + 1}: exit {rc}, last /health/ready: {last}\n{h.log_text()}")
        if "cannot bind" not in h.log_text() and "Address already in use" not in h.log_text():
            break
    pytest.fail(
        f"haproxy did not pass requests to {backends} within {HAPROXY_READY_TIMEOUT:.0f}s:\n" + "\n".join(failures),
        pytrace=False,
    )


@pytest.fixture(scope="session", params=["postgres-s3"])
def zombi_cluster_server(request, zombi_binary, tmp_path_factory):
    """CLUSTER_NODES zombi nodes sharing a fresh Postgres database and
    bucket, started with the postgres-s3 shape's flags plus `--cluster
    --node-id nN`, behind HAProxy; for the session, once a test asks for it.
    The embedded store cannot be shared, so this is the postgres-s3 shape
    only, and like it fails (never skips) without its environment."""
    shape = request.param
    missing = _missing_postgres_s3_env()
    if missing:
        yield Unavailable(shape, _missing_env_message(missing))
        return
    workdir = tmp_path_factory.mktemp("zombi-cluster")
    cleanups = []
    try:
        args, warehouse, s3 = _postgres_s3_storage(cleanups)
        nodes = []
        for i in range(CLUSTER_NODES):
            node_dir = workdir / f"n{i + 1}"
            node_dir.mkdir()
            z = _start(zombi_binary, f"{shape} node n{i + 1}", node_dir,
                       [*args, "--cluster", "--node-id", f"n{i + 1}"], warehouse=warehouse, s3=s3)  # fmt: skip
            cleanups.append(lambda z=z: _finish(z))
            nodes.append(z)
        balancer = _start_haproxy(workdir, [urllib.parse.urlsplit(z.url).netloc for z in nodes])

        def stop_balancer():
            rc = _stop(balancer.proc)
            print(f"\nhaproxy stopped with exit code {rc}; log: {balancer.log_path}", file=sys.stderr)

        cleanups.append(stop_balancer)
        yield Cluster(shape=shape, url=balancer.url, nodes=nodes, balancer=balancer, warehouse=warehouse, s3=s3)
    finally:
        errors = []
        for fn in reversed(cleanups):
            try:
                fn()
            except Exception as e:  # report all, raise after
                errors.append(e)
        if errors:
            raise errors[0]


# ---------------------------------------------------------------------------
# Per-test fixtures

_LOG_OFFSET = pytest.StashKey[int]()
_SERVER = pytest.StashKey[Zombi]()


@pytest.fixture
def zombi(request, zombi_server: Zombi) -> Zombi:
    """The server of this test's shape; its log from this test on is
    attached to the report if the test fails."""
    yield from _for_test(request, zombi_server)


def _for_test(request, z):
    """Yields server z to request's test, checking that it is alive before
    and after, and noting it so that a failing test's report shows its log
    from the test on."""
    if isinstance(z, Unavailable):
        yield z
        return
    z.check_alive()
    request.node.stash[_SERVER] = z
    request.node.stash[_LOG_OFFSET] = z.log_size()
    yield z
    z.check_alive()


@pytest.fixture
def zombi_manual_flush(request, zombi_manual_flush_server: Zombi) -> Zombi:
    """zombi_manual_flush_server for one test, like zombi."""
    z = zombi_manual_flush_server
    if isinstance(z, Unavailable):
        yield z
        return
    z.check_alive()
    yield z
    z.check_alive()


_CLUSTER = pytest.StashKey[tuple]()


@pytest.fixture
def zombi_cluster(request, zombi_cluster_server: Cluster) -> Cluster:
    """zombi_cluster_server for one test: every node's log and the
    balancer's from this test on are attached to the report if it fails."""
    c = zombi_cluster_server
    if isinstance(c, Unavailable):
        yield c
        return
    c.check_alive()
    request.node.stash[_CLUSTER] = (c, {str(path): proc.log_size() for _, path, proc in c.logs()})
    yield c
    c.check_alive()


@pytest.fixture
def catalog(zombi: Zombi):
    if isinstance(zombi, Unavailable):
        return None
    return zombi.catalog()


@pytest.fixture
def ns(request, zombi: Zombi) -> str:
    """A namespace name of this test's own (not created)."""
    base = re.sub(r"[^a-z0-9]+", "_", request.node.originalname.lower()).strip("_")
    return f"{base[:40]}_{secrets.token_hex(3)}"


# ---------------------------------------------------------------------------
# Engines


@pytest.fixture(scope="session")
def spark_engine(tmp_path_factory):
    """One Spark JVM (local[2]) for the whole pytest session, with the
    Iceberg runtime and AWS bundle jars from Maven Central (artifacts.py)."""
    import engines

    try:
        base = engines.start_spark(tmp_path_factory.mktemp("spark"))
    except Exception as e:
        pytest.fail(f"spark: starting the SparkSession failed: {type(e).__name__}: {e}", pytrace=False)
    yield base
    # The catalogs of finished tests live on in this JVM and refresh their
    # short-lived tokens against servers that are gone (test_spark_auth);
    # their errors while it stops are noise, not results.
    base.sparkContext.setLogLevel("OFF")
    base.stop()


@pytest.fixture
def spark(zombi: Zombi, spark_engine):
    """A new SparkSession whose catalog `zombi` is this test's server."""
    if isinstance(zombi, Unavailable):
        return None
    import engines

    return engines.spark_session(spark_engine, zombi.url)


@pytest.fixture
def duck(zombi: Zombi):
    """An in-memory DuckDB with this test's server attached as `zombi`."""
    if isinstance(zombi, Unavailable):
        yield None
        return
    import engines

    con = engines.duckdb_connect(zombi.url)
    yield con
    con.close()


@pytest.fixture(scope="session")
def trino_engine(tmp_path_factory):
    """One Trino server (Maven Central's trino-server-core + trino-iceberg,
    on the Temurin 25 JDK) for the whole pytest session."""
    import engines

    workdir = tmp_path_factory.mktemp("trino")
    try:
        t = engines.start_trino(workdir, _free_port(), preexec_fn=_die_with_parent)
    except Exception as e:
        pytest.fail(f"trino: starting the server failed: {type(e).__name__}: {e}", pytrace=False)
    yield t
    rc = t.stop()
    print(f"\ntrino stopped with exit code {rc}; log: {t.log_path}", file=sys.stderr)


@pytest.fixture
def trino(zombi: Zombi, trino_engine):
    """The Trino server with catalog `zombi` pointing at this test's server."""
    if isinstance(zombi, Unavailable):
        return None
    import engines

    trino_engine.use_catalog(engines.trino_catalog_properties(zombi.url, zombi.s3))
    return trino_engine


# ---------------------------------------------------------------------------
# Reporting

# Which engine a test module drives, for the per-engine summary. A test
# with an `engine` parameter (test_ingest.py, test_json_payloads.py) counts
# for that engine.
ENGINE_OF_MODULE = {
    "test_pyiceberg.py": "PyIceberg",
    "test_flush.py": "PyIceberg",
    "test_spark.py": "Spark",
    "test_duckdb.py": "DuckDB",
    "test_trino.py": "Trino",
    "test_spark_ctas.py": "Spark",
    "test_spark_views.py": "Spark",
    "test_trino_views.py": "Trino",
    "test_pyiceberg_views.py": "PyIceberg",
    "test_docs.py": "docs (engines.md, ingest.md)",
    "test_planning.py": "server-side planning",
    "test_cluster.py": "Spark",
    "test_spark_auth.py": "Spark",
    "test_pyiceberg_auth.py": "PyIceberg",
    "test_console.py": "web console (Chromium)",
}
ENGINE_OF_PARAM = {"spark": "Spark", "duckdb": "DuckDB", "trino": "Trino", "pyiceberg": "PyIceberg"}
# Modules whose scenarios write through zombi's ingest API; the summary
# counts them separately too.
INGEST_MODULES = {"test_ingest.py", "test_json_payloads.py", "test_flush.py", "test_cluster.py"}

_ENGINES = pytest.StashKey[dict]()


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def _engine_of(nodeid: str, config=None) -> str:
    if config is not None and nodeid in config.stash.get(_ENGINES, {}):
        return config.stash[_ENGINES][nodeid]
    module = _module_of(nodeid)
    return ENGINE_OF_MODULE.get(module, module)


def pytest_collection_modifyitems(config, items):
    by_param = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("engine") if callspec else None
        if engine is not None:
            by_param[item.nodeid] = ENGINE_OF_PARAM.get(engine, engine)
    config.stash[_ENGINES] = by_param


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Per engine: how many scenarios (test x shape) passed, how many of
    them write through ingest, and which failed."""
    outcome: dict[str, str] = {}
    for key in ("failed", "error", "passed"):
        for rep in terminalreporter.stats.get(key, []):
            nodeid = getattr(rep, "nodeid", None)
            if nodeid and nodeid not in outcome:
                outcome[nodeid] = "passed" if key == "passed" else "failed"
    if not outcome:
        return
    by_engine: dict[str, list[tuple[str, str]]] = {}
    for nodeid, result in outcome.items():
        by_engine.setdefault(_engine_of(nodeid, config), []).append((nodeid, result))
    terminalreporter.write_sep("=", "engine summary (scenario = test x server shape)")
    order = list(dict.fromkeys(ENGINE_OF_MODULE.values()))
    for engine in sorted(by_engine, key=lambda e: (order.index(e) if e in order else len(order), e)):
        results = by_engine[engine]
        passed = sum(1 for _, r in results if r == "passed")
        line = f"{engine}: {passed}/{len(results)} scenarios passed"
        ingest = [r for nodeid, r in results if _module_of(nodeid) in INGEST_MODULES]
        if ingest:
            line += f" (ingest: {sum(1 for r in ingest if r == 'passed')}/{len(ingest)})"
        terminalreporter.write_line(line)
        for nodeid, r in sorted(results):
            if r != "passed":
                terminalreporter.write_line(f"    FAILED {nodeid.split('::', 1)[-1]}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    for name in ("zombi", "zombi_manual_flush", "zombi_cluster", "zombi_auth"):
        z = getattr(item, "funcargs", {}).get(name)
        if isinstance(z, Unavailable):
            pytest.fail(z.reason, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.skipped and not hasattr(rep, "wasxfail"):
        # A skipped scenario is a failing one: nothing here may pass by not running.
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"{_engine_of(item.nodeid, item.config)}: {item.nodeid} was skipped, which counts as a failure: {reason}"
    z = item.stash.get(_SERVER, None)
    if z is not None and rep.failed:
        since = item.stash.get(_LOG_OFFSET, 0)
        rep.sections.append(
            (f"zombi server log ({z.shape}, {z.log_path}) since the test started", z.log_text(since))
        )
    cluster = item.stash.get(_CLUSTER, None)
    if cluster is not None and rep.failed:
        c, offsets = cluster
        for name, path, proc in c.logs():
            rep.sections.append((f"{name} log ({path}) since the test started", proc.log_text(offsets.get(str(path), 0))))
    return rep
