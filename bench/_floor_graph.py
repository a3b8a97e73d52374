"""What the raw floor clients (`_mail_floor`, `_files_floor`) share on the Graph side.

The settings every floor reads, the token (client credentials) and a JSON GET. Only the
standard library and aiohttp (which both floors import anyway) are imported here, so a
floor's process loads nothing more by sharing them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

GRAPH_SETTINGS = (
    "FLOOR_GRAPH_URL",
    "FLOOR_AUTHORITY",
    "FLOOR_TENANT_ID",
    "FLOOR_CLIENT_ID",
    "FLOOR_CLIENT_SECRET",
    "FLOOR_CA_FILE",
)
SCOPE = "https://graph.microsoft.com/.default"


def check_settings(env: Mapping[str, str], names: Sequence[str]) -> None:
    """End the process naming every one of `names` that `env` lacks."""
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise SystemExit(f"floor: missing {', '.join(missing)}")


def token_url(env: Mapping[str, str]) -> str:
    return f"https://{env['FLOOR_AUTHORITY']}/{env['FLOOR_TENANT_ID']}/oauth2/v2.0/token"


async def bearer(http: aiohttp.ClientSession, url: str, client_id: str, secret: str) -> str:
    """The Authorization header's value for a token fetched with client credentials."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": SCOPE,
    }
    async with http.post(url, data=form) as answer:
        answer.raise_for_status()
        return f"Bearer {(await answer.json())['access_token']}"


async def get_json(
    http: aiohttp.ClientSession, url: str, headers: Mapping[str, str]
) -> dict[str, Any]:
    """One Graph GET of `url` (already encoded), its JSON body."""
    async with http.get(URL(url, encoded=True), headers=headers) as answer:
        answer.raise_for_status()
        body: dict[str, Any] = json.loads(await answer.read())
        return body
