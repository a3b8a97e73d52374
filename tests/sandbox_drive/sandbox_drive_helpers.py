"""Helpers for the drive tests: an authenticated client and delta rounds."""

from __future__ import annotations

from typing import Any

import httpx
from sandbox_helpers import access_token

from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec

SMALL = TenantSpec(
    seed=7, users=2, messages=10, large_messages=0, files_per_drive=12, large_file_bytes=3_000_000
)


def make_tenant(spec: TenantSpec = SMALL) -> Tenant:
    """Two users, 12 files a drive besides the showcase, a 3 MB "large" file."""
    return Tenant.generate(spec)


def client(server: SandboxServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {access_token(server)}"}
    return httpx.Client(base_url=server.graph_url + "/", headers=headers, timeout=30)


def delta_round(
    graph: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (entries, deltaLink, pages)."""
    entries: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = graph.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        entries += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return entries, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def paths_from_parent_ids(entries: list[dict[str, Any]]) -> dict[str, str]:
    """Each item's path from the root, computed only from names and parent ids."""
    by_id = {e["id"]: e for e in entries if "deleted" not in e}
    root = next(e["id"] for e in by_id.values() if "root" in e)

    def path(item_id: str) -> str:
        item = by_id[item_id]
        parent = item["parentReference"].get("id")
        if item_id == root:
            return ""
        above = path(parent)
        return f"{above}/{item['name']}" if above else item["name"]

    return {item_id: path(item_id) for item_id in by_id if item_id != root}
