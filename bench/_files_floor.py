"""The files benchmark's floor: the least any Python client does to copy a OneDrive into WebDAV.

    python -m hirondelle.bench._files_floor UPN    # settings in FLOOR_* variables

No state, no retries, no budget, no part file, no check: a token (client credentials),
the drive's id, its delta pages from the root (`/drives/{id}/root/delta`, which lists
every item with its name and parent id), each folder made by MKCOL (parents first),
then `FLOOR_FETCHES` files at once, each downloaded whole (`/items/{id}/content`,
which answers 302 to a pre-authenticated URL that aiohttp follows,
https://learn.microsoft.com/en-us/graph/api/driveitem-get-content) and PUT to its final
path below `FLOOR_DAV_FOLDER` with its modification time
(`X-OC-Mtime`, which rclone honours).
OneNote packages and remote items are left out, as hirondelle leaves them. Names are
not mapped: a name over 255 bytes fails (hirondelle shortens it) and the NFC and NFD
twins of one name land on one file (hirondelle keeps both), as with rclone. One
process, as one OneDrive is one owner moved by one hirondelle worker. It prints one
JSON line: files stored, and files that failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from hirondelle.bench._floor_graph import (
    GRAPH_SETTINGS,
    bearer,
    check_settings,
    get_json,
    token_url,
)

SETTINGS = (
    *GRAPH_SETTINGS,
    "FLOOR_DAV_URL",
    "FLOOR_DAV_FOLDER",
    "FLOOR_DAV_LOGIN",
    "FLOOR_DAV_PASSWORD",
    "FLOOR_FETCHES",
)
DELTA_PAGE = 999  # the most a drive page takes, as hirondelle asks


@dataclass(frozen=True)
class Settings:
    """Where the sandbox and the WebDAV folder are, and how many files at once."""

    graph_url: str
    token_url: str
    client_id: str
    client_secret: str
    ca_file: str
    dav_url: str  # the user's root, ending in "/"
    dav_folder: tuple[str, ...]  # the folder the drive goes into, percent-encoded segments
    dav_auth: dict[str, str]  # the Authorization header (Basic)
    fetches: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        check_settings(env, SETTINGS)
        return cls(
            graph_url=env["FLOOR_GRAPH_URL"],
            token_url=token_url(env),
            client_id=env["FLOOR_CLIENT_ID"],
            client_secret=env["FLOOR_CLIENT_SECRET"],
            ca_file=env["FLOOR_CA_FILE"],
            dav_url=env["FLOOR_DAV_URL"].rstrip("/") + "/",
            dav_folder=tuple(quote(part, safe="") for part in env["FLOOR_DAV_FOLDER"].split("/")),
            dav_auth={
                "Authorization": aiohttp.BasicAuth(
                    env["FLOOR_DAV_LOGIN"], env["FLOOR_DAV_PASSWORD"]
                ).encode()
            },
            fetches=int(env["FLOOR_FETCHES"]),
        )


def paths(entries: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(folder paths, parents first; the file entries, each with its `path`) of a drive's
    delta entries, paths from the root, segments percent-encoded."""
    nodes = {entry["id"]: entry for entry in entries}
    found: dict[str, str] = {}

    def path_of(item_id: str) -> str:
        if item_id in found:
            return found[item_id]
        entry = nodes.get(item_id)
        if entry is None or "root" in entry:
            found[item_id] = ""
            return ""
        parent = path_of((entry.get("parentReference") or {}).get("id", ""))
        found[item_id] = f"{parent}{quote(entry['name'], safe='')}/"
        return found[item_id]

    folders = sorted(
        (path_of(e["id"]) for e in entries if "folder" in e and "root" not in e), key=len
    )
    files = [
        {**entry, "path": path_of(entry["id"]).rstrip("/")}
        for entry in entries
        if "file" in entry and "package" not in entry and "remoteItem" not in entry
    ]
    return folders, files


def mtime(entry: Mapping[str, Any]) -> str | None:
    """The file's modification time, in seconds since the epoch, for `X-OC-Mtime`."""
    stamp = (entry.get("fileSystemInfo") or {}).get("lastModifiedDateTime")
    if not stamp:
        return None
    return str(int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()))


async def copy(settings: Settings, upn: str) -> tuple[int, int]:
    """Copy `upn`'s OneDrive; (files stored, files failed)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    connector = aiohttp.TCPConnector(ssl=context, limit=2 * settings.fetches + 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        authorization = await bearer(
            http, settings.token_url, settings.client_id, settings.client_secret
        )
        headers = {"Authorization": authorization}

        async def get(url: str) -> dict[str, Any]:
            return await get_json(http, url, headers)

        drive = await get(f"{settings.graph_url}/users/{quote(upn, safe='@')}/drive?$select=id")
        entries: list[dict[str, Any]] = []
        drive_url = f"{settings.graph_url}/drives/{quote(drive['id'], safe='!')}"
        root_items = f"{drive_url}/items"
        url: str | None = f"{drive_url}/root/delta?$top={DELTA_PAGE}"
        while url:
            page = await get(url)
            entries.extend(page.get("value", []))
            url = page.get("@odata.nextLink")
        folders, files = paths(entries)
        above = [
            "/".join(settings.dav_folder[: n + 1]) + "/" for n in range(len(settings.dav_folder))
        ]
        base = settings.dav_url + above[-1]
        for path in [*above, *(above[-1] + folder for folder in folders)]:  # parents first
            folder = URL(settings.dav_url + path, encoded=True)
            async with http.request("MKCOL", folder, headers=settings.dav_auth):
                pass
        gate = asyncio.Semaphore(settings.fetches)
        stored = 0

        async def one(entry: Mapping[str, Any]) -> None:
            nonlocal stored
            async with gate:
                download = URL(f"{root_items}/{quote(entry['id'], safe='!')}/content", encoded=True)
                async with http.get(download, headers=headers) as answer:
                    if answer.status != 200:
                        print(f"GET {entry['path']}: {answer.status}", file=sys.stderr)
                        return
                    content = await answer.read()
                extra = {"X-OC-Mtime": stamp} if (stamp := mtime(entry)) else {}
                extra.update(settings.dav_auth)
                target = URL(base + entry["path"], encoded=True)
                async with http.put(target, data=content, headers=extra) as answer:
                    if answer.status in (200, 201, 204):
                        stored += 1
                    else:
                        print(f"PUT {entry['path']}: {answer.status}", file=sys.stderr)

        await asyncio.gather(*(one(entry) for entry in files))
        return stored, len(files) - stored


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        raise SystemExit("usage: python -m hirondelle.bench._files_floor UPN")
    stored, failed = asyncio.run(copy(Settings.from_env(os.environ), argv[0]))
    print(json.dumps({"stored": stored, "failed": failed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
