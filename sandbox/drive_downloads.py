"""The sandbox's drive download URLs: short-lived, pre-authenticated, served outside Graph.

`/content` answers 302 to a `/_download/<ticket>` URL (driveitem-get-content), as
SharePoint's download host does: no bearer token, an expiry, `Range` honoured, and the
same injected faults as Graph requests (a truncation fault cuts the body halfway and
resets the connection). A file SharePoint enriched after upload serves its rewritten
bytes, announced by their own Content-Length.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from hirondelle.sandbox.drive_data import DriveItem, SandboxDrives
from hirondelle.sandbox.faults import Fate
from hirondelle.sandbox.mail import GraphRequest

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

TICKET_SECONDS = 60.0


@dataclass(frozen=True)
class _Ticket:
    drive_id: str
    item_id: str
    version: str | None
    expires: float
    serial: int  # which download URL this is (an enrichment may differ per download)


class DriveDownloads:
    """Issues download URLs for drive items and serves them."""

    def __init__(
        self,
        tenant: Tenant,
        fate: Callable[[], Fate],
        faults: Counter[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant = tenant
        self.ticket_seconds = TICKET_SECONDS
        self._fate = fate
        self._faults = faults
        self._clock = clock
        self._tickets: dict[str, _Ticket] = {}
        self._issued = 0

    @property
    def drives(self) -> SandboxDrives:
        return self.tenant.drives

    def ticket_url(self, request: GraphRequest, item: DriveItem, version: str | None) -> str:
        now = self._clock()
        self._tickets = {k: t for k, t in self._tickets.items() if t.expires > now}
        ticket = secrets.token_urlsafe(24)
        self._issued += 1
        expires = now + self.ticket_seconds
        self._tickets[ticket] = _Ticket(item.drive_id, item.id, version, expires, self._issued)
        origin = request.base_url.rsplit("/v1.0", 1)[0]
        return f"{origin}/_download/{ticket}"

    async def download(self, request: web.Request) -> web.StreamResponse:
        """GET or HEAD on a download URL: no bearer token, expires, honours `Range`."""
        fate = self._fate()
        if fate is Fate.RESET:
            self._faults["reset"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fate is Fate.ERROR:
            self._faults["error"] += 1
            return _text(503, "Service unavailable.", {"Retry-After": "1"})
        ticket = self._tickets.get(request.match_info["ticket"])
        if ticket is None or ticket.expires <= self._clock():
            return _text(401, "The download URL has expired or is not valid.")
        try:
            item = self.drives.item(ticket.drive_id, ticket.item_id)
            size = self.drives.served_size(item, ticket.version, ticket.serial)
        except KeyError:
            return _text(404, "The file is gone.")
        wanted = _byte_range(request.headers.get("Range"), size)
        if wanted is None:
            return _text(416, "Range not satisfiable.", {"Content-Range": f"bytes */{size}"})
        return await self._stream(request, item, ticket, wanted, size, fate is Fate.TRUNCATE)

    async def _stream(
        self,
        request: web.Request,
        item: DriveItem,
        ticket: _Ticket,
        wanted: tuple[int, int, bool],
        size: int,
        truncate: bool,
    ) -> web.StreamResponse:
        start, end, partial = wanted
        headers = {"Accept-Ranges": "bytes", "ETag": item.etag}
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        stream = web.StreamResponse(status=206 if partial else 200, headers=headers)
        stream.content_type = item.mime_type or "application/octet-stream"
        stream.content_length = end - start
        await stream.prepare(request)
        if request.method == "HEAD":
            return stream
        limit = start + (end - start) // 2 if truncate else end
        for chunk in self.drives.served_chunks(item, start, limit, ticket.version, ticket.serial):
            await stream.write(chunk)
        if truncate:
            self._faults["truncate"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # the connection is gone mid-body
        await stream.write_eof()
        return stream


def _byte_range(header: str | None, size: int) -> tuple[int, int, bool] | None:
    """(start, end exclusive, partial) for a single `bytes=` range; None if unsatisfiable."""
    if not header:
        return 0, size, False
    found = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if found is None or found.group(1) == found.group(2) == "":
        return 0, size, False  # a multi-range or malformed header: the whole body (RFC 9110)
    first, last = found.group(1), found.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        return None
    return start, end, True


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=message, headers=headers)
