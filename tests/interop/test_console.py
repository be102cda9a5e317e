"""The web console (/ui) in a real browser: Debian's Chromium, headless,
driven by Playwright, against a running zombi with auth on and a producer
writing events the whole time, once per server shape.

The test signs in as a reader with OAuth2 client credentials, clicks
namespace → table → overview → snapshots → files → ingest → live tail →
nodes, and checks what each page shows against what the catalog answers
over REST at the same time (row counts, columns, snapshots by committer,
a chart that moves, tail events in offset order); then signs in again as
an admin and flushes from the page. Screenshots of each page go to
$ZOMBI_CONSOLE_SCREENSHOTS (docs/console.md embeds the embedded shape's,
from docs/img/console/, as <shape>-<page>.png) or to the test's temporary
directory.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import CLUSTER_NODES, SHAPES, Cluster, OAuthClient, Zombi, _for_test, _oauth_client_flag, _serve

ENGINE = "console"
CHROMIUM = os.environ.get("ZOMBI_TEST_CHROMIUM", "/usr/bin/chromium")
# Flags for Chromium as root in a sandbox without a display or a network
# beyond localhost: no sandbox, no GPU, and none of its background calls to
# Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 30_000


@pytest.fixture(scope="module", params=SHAPES)
def console_server(request, zombi_binary, tmp_path_factory):
    """A server of each shape with auth on: an admin token, a writer token
    for the producer, and an OAuth2 client with the reader role that the
    browser signs in with. Tokens live the server's default hour."""
    reader = OAuthClient("console-reader", secrets.token_urlsafe(24))
    admin, writer = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    args = ["--auth-token", f"{admin}:admin", "--auth-token", f"{writer}:writer",
            "--oauth-client", _oauth_client_flag(zombi_binary, reader, "reader"), "--flush-interval", "1s"]
    yield from _serve(request.param, zombi_binary, tmp_path_factory, args, name="zombi-console",
                      extra={"reader": reader, "admin": admin, "writer": writer})


@pytest.fixture
def console(request, console_server):
    """The console server of this test's shape (see conftest's zombi)."""
    yield from _for_test(request, console_server)


class Producer:
    """Writes single events to a table until stopped, as a writer."""

    def __init__(self, z: Zombi, ref: str, token: str):
        self.url = f"{z.url}/tables/{ref}"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.stop = threading.Event()
        self.sent = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with requests.Session() as s:
            while not self.stop.is_set():
                r = s.post(self.url, headers=self.headers, json={"payload": {"src": "console-test", "n": self.sent}}, timeout=30)
                if r.status_code != 202:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")
                self.sent += 1
                self.stop.wait(0.03)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def rest(z: Zombi, path: str, token: str, method: str = "GET", **kw) -> dict:
    r = requests.request(method, f"{z.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
    return r.json() if r.text else {}


def total_records(meta: dict) -> int:
    cur = next((s for s in meta["snapshots"] if s["snapshot-id"] == meta.get("current-snapshot-id")), None)
    return int(cur["summary"].get("total-records", 0)) if cur else 0


def number(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text) or "0")


def test_console(console: Zombi, tmp_path):
    z = console
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("ZOMBI_CONSOLE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    admin, writer, reader = z.extra["admin"], z.extra["writer"], z.extra["reader"]
    ns = f"console_{secrets.token_hex(3)}"
    ref = f"{ns}.clicks"
    tpath = f"/v1/namespaces/{ns}/tables/clicks"

    # Three flushed batches, then a compaction: the timeline has commits
    # by the flusher and by compaction.
    # A property that looks like markup: the page must show it as text.
    hostile = '<img src=x onerror="document.title=1">'
    rest(z, "/v1/namespaces", admin, "POST", json={"namespace": [ns], "properties": {"note": hostile}})
    for i in range(3):
        recs = [{"payload": {"src": "setup", "batch": i, "n": n}} for n in range(100)]
        rest(z, f"/tables/{ref}/bulk", writer, "POST", json={"records": recs})
        rest(z, f"/tables/{ref}/flush", admin, "POST")
    view_sql = "SELECT sequence AS seq FROM clicks"
    rest(z, f"/v1/namespaces/{ns}/views", admin, "POST", json={
        "name": "recent", "schema": {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "seq", "type": "long", "required": False}]},
        "view-version": {"version-id": 1, "schema-id": 0, "timestamp-ms": int(time.time() * 1000), "summary": {"engine-name": "test"},
                         "representations": [{"type": "sql", "sql": view_sql, "dialect": "spark"}], "default-namespace": [ns]},
        "properties": {}})
    compacted = rest(z, f"/tables/{ref}/compact", admin, "POST")
    assert compacted["rewritten_files"] >= 2, compacted

    errors: list[str] = []
    with sync_playwright() as pw, Producer(z, ref, writer) as producer:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        shot = lambda name: page.screenshot(path=str(shots / f"{z.shape}-{name}.png"), full_page=True)  # noqa: E731

        # Sign in: auth is on, so the page asks; a wrong secret is refused.
        page.goto(f"{z.url}/ui")
        expect(page.locator("#login")).to_be_visible()
        page.fill("#login-client", reader.id)
        page.fill("#login-secret", "wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("refused")
        page.fill("#login-secret", reader.secret)
        page.click("#login-submit")
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#who")).to_contain_text(reader.id)

        # Namespace → table.
        page.click(f"#ns-tree a[data-ns='{ns}']")
        expect(page.locator("#tables a[data-table='clicks']")).to_be_visible()
        expect(page.locator("main td", has_text="onerror")).to_have_text(hostile)
        expect(page.locator("main img")).to_have_count(0)
        # A view: its schema and SQL.
        page.locator("#views a", has_text="recent").click()
        expect(page.locator("#view-schema")).to_contain_text("seq")
        expect(page.locator("pre.sql")).to_have_text(view_sql)
        page.go_back()
        expect(page.locator("#tables a[data-table='clicks']")).to_be_visible()
        page.click("#tables a[data-table='clicks']")

        # Overview: the schema's columns, the hour partition, and the
        # table's rows as the catalog counts them while the page loads.
        before = total_records(rest(z, tpath, admin)["metadata"])
        page.click("a[data-tab='overview']")
        expect(page.locator("#schema")).to_be_visible()
        after = total_records(rest(z, tpath, admin)["metadata"])
        columns = page.locator("#schema tbody tr td:nth-child(2)").all_inner_texts()
        assert [c.strip() for c in columns] == ["sequence", "table", "partition", "payload", "event_time", "idempotency_key", "ingest_time"], columns
        expect(page.locator("#partition-spec")).to_contain_text("hour")
        expect(page.locator("#properties")).to_contain_text("zombi.ingest.format")
        shown = number(page.locator("[data-tile='total-records'] .value").inner_text())
        assert 300 <= before <= shown <= after, (before, shown, after)
        shot("overview")

        # Snapshots: one entry per snapshot of the table, by who made it.
        page.click("a[data-tab='snapshots']")
        expect(page.locator("#snapshots li").first).to_be_visible()
        meta = rest(z, tpath, admin)["metadata"]
        items = page.locator("#snapshots li")
        n = items.count()
        assert len(meta["snapshots"]) >= n >= 4, (n, len(meta["snapshots"]))
        committers = [items.nth(i).get_attribute("data-committer") for i in range(n)]
        assert set(committers) == {"flusher", "compaction"}, committers
        # Snapshot IDs are 64-bit: shown exactly, not rounded to a double.
        shown_ids = [items.nth(i).get_attribute("data-snapshot") for i in range(n)]
        assert set(shown_ids) <= {str(sn["snapshot-id"]) for sn in meta["snapshots"]}, shown_ids
        expect(items.first).to_contain_text(shown_ids[0])
        replace = page.locator("#snapshots li[data-committer='compaction']")
        expect(replace).to_have_count(1)
        assert replace.get_attribute("data-operation") == "replace"
        shot("snapshots")

        # Files: the current snapshot's files by partition; the rows sum to
        # the records shown, which lie between the catalog's before and after.
        before = total_records(rest(z, tpath, admin)["metadata"])
        page.click("a[data-tab='files']")
        expect(page.locator("#partitions")).to_be_visible()
        after = total_records(rest(z, tpath, admin)["metadata"])
        records = number(page.locator("[data-tile='records'] .value").inner_text())
        assert before <= records <= after, (before, records, after)
        rows = page.locator("#partitions tbody tr")
        assert rows.count() >= 1
        per_partition = sum(number(rows.nth(i).locator("td").nth(4).inner_text()) for i in range(rows.count()))
        assert per_partition == records, (per_partition, records)
        shot("files")

        # Ingest: the producer's events show as a moving chart; a reader is
        # offered no flush or compaction.
        page.click("a[data-tab='ingest']")
        acked = page.locator("[data-chart='Events per second'] .legend [data-series='acknowledged']")
        page.wait_for_function(
            "() => Number(document.querySelector(\"[data-chart='Events per second'] .legend [data-series='acknowledged']\")?.dataset.last) > 0")
        line = page.locator("[data-chart='Events per second'] polyline[data-series='acknowledged']")
        first_points, first_count = line.get_attribute("points"), int(page.locator("[data-chart='Events per second']").get_attribute("data-points"))
        first_accepted = number(page.locator("[data-tile='accepted'] .value").inner_text())
        page.wait_for_timeout(3000)
        assert line.get_attribute("points") != first_points, "the acknowledged line did not move in 3 s"
        assert int(page.locator("[data-chart='Events per second']").get_attribute("data-points")) > first_count
        assert number(page.locator("[data-tile='accepted'] .value").inner_text()) > first_accepted
        assert float(acked.get_attribute("data-last")) > 0
        # The flusher commits every second: its lag and commits show.
        expect(page.locator("#flushes tbody tr").first).to_be_visible()
        expect(page.locator("[data-chart='Ack → commit lag (last commits)'] .legend [data-series='p99']")).to_have_attribute("data-last", re.compile(r"^[0-9.e-]+$"))
        expect(page.locator("#compactions tbody tr")).to_have_count(1)
        expect(page.locator("#read-only")).to_be_visible()
        expect(page.locator("#action-flush")).to_have_count(0)
        shot("ingest")

        # Live tail: the producer's events, newest first, offsets in order.
        page.click("a[data-tab='tail']")
        expect(page.locator("#tail-status")).to_have_text("live")
        page.wait_for_function("() => document.querySelectorAll('#tail tbody tr').length >= 10")
        offsets = [int(o) for o in page.locator("#tail tbody tr").evaluate_all("rs => rs.map(r => r.dataset.offset)")]
        assert offsets == sorted(offsets, reverse=True) and len(set(offsets)) == len(offsets), offsets
        # One producer writes one event at a time: no offset is skipped.
        assert offsets[0] - offsets[-1] == len(offsets) - 1, offsets
        expect(page.locator("#tail tbody tr").first).to_contain_text("console-test")
        shot("tail")

        # Nodes: the list takes the admin role, which a reader lacks.
        page.click("#nav-nodes")
        expect(page.locator("#nodes-body")).to_contain_text("admin role")

        # Sign in again as an admin: flush from the page, and the node list
        # (one node on the embedded store, which keeps no registry).
        page.click("#logout")
        page.fill("#login-token", admin)
        page.click("#login-submit")
        expect(page.locator("#login")).to_be_hidden()
        page.goto(f"{z.url}/ui/#/t/{urllib.parse.quote(ns)}/clicks/ingest")
        page.click("#action-flush")
        expect(page.locator(".actions")).to_contain_text("Flush now: ")
        expect(page.locator("#action-compact")).to_be_visible()
        page.wait_for_timeout(5000)  # a few points on the charts
        shot("ingest-admin")
        page.click("#nav-nodes")
        if z.shape == "embedded":
            expect(page.locator("#single-node")).to_be_visible()
        else:
            expect(page.locator("#nodes tbody tr")).to_have_count(1)
            expect(page.locator("#nodes tbody tr").first).to_contain_text("alive")
            shot("nodes")
        browser.close()

    assert not producer.errors, producer.errors[:5]
    assert not errors, errors
    assert producer.sent > 50, producer.sent


def test_console_cluster_nodes(zombi_cluster: Cluster, tmp_path):
    """Through the load balancer in front of a cluster (auth off), the
    nodes page lists every node, alive, and refreshes."""
    from playwright.sync_api import expect, sync_playwright

    c = zombi_cluster
    shots = Path(os.environ.get("ZOMBI_CONSOLE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 600})
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.goto(f"{c.url}/ui/#/nodes")
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#who")).to_have_text("auth off")
        rows = page.locator("#nodes tbody tr")
        expect(rows).to_have_count(CLUSTER_NODES)
        ids = sorted(rows.nth(i).locator("td").first.inner_text() for i in range(CLUSTER_NODES))
        assert ids == [f"n{i + 1}" for i in range(CLUSTER_NODES)], ids
        for i in range(CLUSTER_NODES):
            expect(rows.nth(i)).to_contain_text("alive")
        page.screenshot(path=str(shots / "cluster-nodes.png"), full_page=True)
        browser.close()
    assert not errors, errors


def test_console_doc_images():
    """Every screenshot docs/console.md shows is in the repository."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    text = (docs / "console.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 7, images
    missing = [i for i in images if not (docs / i).is_file()]
    assert not missing, missing
