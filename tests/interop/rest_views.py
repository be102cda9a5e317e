"""The catalog's own answers about views, over plain HTTP (not through an
engine): loadView, listViews, and create requests for the checks that a
table and a view cannot share a name.

Request bodies follow the Iceberg REST spec (CreateViewRequest,
CreateTableRequest); nothing here depends on how Zombi stores a view.
"""

from __future__ import annotations

import time
import urllib.parse

import requests

from conftest import Zombi


def _ns(namespace: str) -> str:
    return urllib.parse.quote(namespace, safe="")


def views_url(zombi: Zombi, namespace: str, view: str | None = None) -> str:
    url = f"{zombi.url}/v1/namespaces/{_ns(namespace)}/views"
    if view is not None:
        url += "/" + urllib.parse.quote(view, safe="")
    return url


def rest_view(zombi: Zombi, namespace: str, view: str) -> dict | None:
    """The loadView response for namespace.view, or None when the catalog
    answers 404 NoSuchViewException. Any other answer (404 for a route the
    server does not have, 5xx, ...) raises with the server's text."""
    url = views_url(zombi, namespace, view)
    r = requests.get(url, timeout=30)
    if r.status_code == 404 and _error_type(r) == "NoSuchViewException":
        return None
    if r.status_code != 200:
        raise AssertionError(f"GET {url}: HTTP {r.status_code}: {r.text[:500]}")
    return r.json()


def rest_list_views(zombi: Zombi, namespace: str) -> list[str]:
    """Names of the views the catalog lists in namespace (every page)."""
    url = views_url(zombi, namespace)
    names: list[str] = []
    params: dict[str, str] = {}
    while True:
        r = requests.get(url, params=params, timeout=30)
        if r.status_code != 200:
            raise AssertionError(f"GET {url}: HTTP {r.status_code}: {r.text[:500]}")
        d = r.json()
        names += [i["name"] for i in d.get("identifiers", [])]
        token = d.get("next-page-token")
        if not token:
            return sorted(names)
        params["pageToken"] = token


def current_version(meta: dict) -> dict:
    """The current view version of a loadView response."""
    md = meta["metadata"]
    return next(v for v in md["versions"] if v["version-id"] == md["current-version-id"])


def representations(meta: dict) -> list[tuple[str, str]]:
    """(dialect, sql) of every SQL representation of the current version."""
    return [(r["dialect"], r["sql"]) for r in current_version(meta)["representations"] if r.get("type") == "sql"]


def view_schema(meta: dict) -> list[tuple[str, str]]:
    """(name, type) of the current version's schema fields."""
    md = meta["metadata"]
    sid = current_version(meta)["schema-id"]
    schema = next(x for x in md["schemas"] if x["schema-id"] == sid)
    return [(f["name"], f["type"]) for f in schema["fields"]]


def post_create_view(zombi: Zombi, namespace: str, name: str) -> requests.Response:
    """A valid CreateViewRequest for namespace.name (one int column,
    dialect spark), as any engine would send it."""
    body = {
        "name": name,
        "schema": {
            "type": "struct",
            "schema-id": 0,
            "fields": [{"id": 1, "name": "x", "required": False, "type": "int"}],
        },
        "view-version": {
            "version-id": 1,
            "timestamp-ms": int(time.time() * 1000),
            "schema-id": 0,
            "summary": {"engine-name": "zombi-interop"},
            "representations": [{"type": "sql", "sql": "SELECT 1 AS x", "dialect": "spark"}],
            "default-namespace": [namespace],
        },
        "properties": {},
    }
    return requests.post(views_url(zombi, namespace), json=body, timeout=30)


def post_create_table(zombi: Zombi, namespace: str, name: str, stage: bool) -> requests.Response:
    """A valid CreateTableRequest for namespace.name (one int column,
    unpartitioned); stage=True asks for a staged create."""
    body = {
        "name": name,
        "schema": {
            "type": "struct",
            "schema-id": 0,
            "fields": [{"id": 1, "name": "x", "required": False, "type": "int"}],
        },
        "stage-create": stage,
    }
    return requests.post(f"{zombi.url}/v1/namespaces/{_ns(namespace)}/tables", json=body, timeout=30)


def error_of(r: requests.Response) -> tuple[int, str | None]:
    """(HTTP status, error type of the REST error body)."""
    return r.status_code, _error_type(r)


def _error_type(r: requests.Response) -> str | None:
    try:
        return r.json().get("error", {}).get("type")
    except ValueError:
        return None
