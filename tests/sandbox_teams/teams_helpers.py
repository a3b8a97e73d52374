"""Helpers for the Teams sandbox tests: small tenants, lookups and paging over raw HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import TenantSpec

SMALL = TenantSpec(
    seed=7, users=3, messages=5, large_messages=0, large_file_bytes=0, files_per_drive=12
)
BIG = TenantSpec(
    seed=7,
    users=3,
    messages=5,
    large_messages=0,
    large_file_bytes=0,
    files_per_drive=12,
    big_thread=True,
)
PREFER_ALL = {"Prefer": "include-unknown-enum-members"}


def channel_path(sb: SandboxServer, team: int, channel: str) -> str:
    """`teams/{id}/channels/{id}` of a seeded channel, by team index and display name."""
    data = sb.tenant.teams
    found = data.teams[team]
    chosen = next(c for c in data.channels(found.id) if c.display_name == channel)
    return f"teams/{found.id}/channels/{chosen.id}"


def every_page(
    client: httpx.Client, url: str, params: dict[str, Any] | None = None, **headers: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every entry of a paged listing, and the last page (which holds any deltaLink)."""
    found: list[dict[str, Any]] = []
    response = client.get(url, params=params, headers=headers)
    while True:
        response.raise_for_status()
        page = response.json()
        found += page["value"]
        link = page.get("@odata.nextLink")
        if not link:
            return found, page
        response = client.get(link, headers=headers)
