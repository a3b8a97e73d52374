"""Streaming download of a driveItem's content into a `Blob`, resumable and hashed on the way.

Graph answers `GET /drives/{d}/items/{i}/content` with 302 Found to a short-lived,
pre-authenticated URL; the bytes come from there, without the Graph token (some
download hosts refuse a request that carries one), and a partial range is asked of
that URL, not of `/content`:
https://learn.microsoft.com/en-us/graph/api/driveitem-get-content#partial-range-downloads

The body is written to a temporary file in chunks while QuickXorHash and SHA-256 are
updated, so memory stays flat whatever the size. A dropped connection or a body
shorter than announced resumes with `Range: bytes=N-` (guarded by `If-Range` when
the first answer gave a validator); an expired link is replaced by a fresh one from
`/content`. At the end, the QuickXorHash is compared with the one Graph published.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import httpx

from ...mappings.quickxor import QuickXorHash
from ...migrator.errors import Retriable
from ...migrator.model import Blob
from .client import GraphClient
from .errors import Call, LinkExpired, TruncatedBody

SHAREPOINT = "sharepoint"  # the one tenant-wide resource-unit budget lane of drive requests
DOWNLOAD_RU = 1  # a file download costs one SharePoint resource unit
CHUNK_BYTES = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class ContentMismatch(Retriable):
    """The downloaded bytes do not hash to the quickXorHash Graph published for the file."""


@dataclass
class _Spool:
    """The temporary file being filled, its running hashes and where the download stands."""

    file: IO[bytes]
    path: Path
    offset: int = 0
    quickxor: QuickXorHash = field(default_factory=QuickXorHash)
    sha256: Any = field(default_factory=hashlib.sha256)
    location: str | None = None  # the pre-authenticated URL, while it works
    validator: str | None = None  # ETag (or Last-Modified) of the first answer, for If-Range

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.quickxor.update(chunk)
        self.sha256.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """Forget every byte received: the server sent the whole content again."""
        self.file.seek(0)
        self.file.truncate()
        self.offset = 0
        self.quickxor = QuickXorHash()
        self.sha256 = hashlib.sha256()

    def blob(self) -> Blob:
        hashes = {"quickXorHash": self.quickxor.b64digest(), "sha256": self.sha256.hexdigest()}
        return Blob(self.path, self.offset, hashes)


class DriveDownloader:
    """Downloads driveItem content to spooled temporary files through the SharePoint budget."""

    def __init__(
        self,
        client: GraphClient,
        *,
        temp_dir: Path | None = None,
        lane: str = SHAREPOINT,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.client = client
        self.temp_dir = temp_dir
        self.lane = lane
        self.chunk_bytes = chunk_bytes

    async def download(
        self, content_url: str, call: Call, expected_quickxor: str | None = None
    ) -> Blob:
        """The content behind `content_url` (a `/content` URL) as a `Blob`.

        Raises `ContentMismatch` (retriable) when Graph's quickXorHash disagrees, the
        table's errors otherwise; the temporary file is removed on any failure.
        """
        spool = self._open_spool()
        try:
            await self._fill(spool, content_url, call)
            spool.file.close()
            blob = spool.blob()
            if expected_quickxor and not same_quickxor(expected_quickxor, blob):
                raise ContentMismatch(
                    f"{call.what}: quickXorHash of the {blob.size} bytes received differs "
                    "from the one Graph published (the file changed or the transfer was damaged)"
                )
            return blob
        except BaseException:
            spool.file.close()
            _unlink(spool.path)
            raise

    def empty(self) -> Blob:
        """A zero-byte `Blob` with its hashes, for files Graph lists as empty (no request)."""
        spool = self._open_spool()
        spool.file.close()
        return spool.blob()

    def _open_spool(self) -> _Spool:
        if self.temp_dir is not None:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix="hirondelle-drive-", suffix=".part", dir=self.temp_dir
        )
        return _Spool(os.fdopen(handle, "wb"), Path(name))

    async def _fill(self, spool: _Spool, content_url: str, call: Call) -> None:
        """Run attempts through the budget; a failure after progress earns fresh attempts."""
        budgets = self.client.budgets
        while True:
            reached = spool.offset
            try:
                await budgets.run(
                    self.lane, lambda: self._attempt(spool, content_url, call), cost=DOWNLOAD_RU
                )
                return
            except Retriable:
                if spool.offset == reached:
                    raise

    async def _attempt(self, spool: _Spool, content_url: str, call: Call) -> None:
        """One request for the bytes not yet received, from a known or a fresh link."""
        if spool.location is None:
            spool.location = await self.client.download_location(content_url, call)
        link_call = replace(call, link=True)
        try:
            async with self.client.download_stream(
                spool.location, link_call, _range_headers(spool)
            ) as response:
                received = self._accept(response, spool)
                async for chunk in response.aiter_bytes(self.chunk_bytes):
                    spool.write(chunk)
                    received += len(chunk)
                _check_complete(response, received)
        except LinkExpired:
            spool.location = None
            raise

    @staticmethod
    def _accept(response: httpx.Response, spool: _Spool) -> int:
        """Line the answer up with the spool; return the bytes of this answer counted so far."""
        if response.status_code == 206 and spool.offset:
            start = _range_start(response.headers.get("Content-Range"))
            if start == spool.offset:
                return 0
            spool.restart()
            raise Retriable(f"asked for bytes from {spool.offset}, got a range from {start}", 0.0)
        if spool.offset:
            spool.restart()  # 200: the server ignored Range, or If-Range saw a new version
        spool.validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        return 0


def same_quickxor(expected: str, blob: Blob) -> bool:
    """Whether Graph's base64 quickXorHash names the same digest as the blob's."""
    try:
        wanted = base64.b64decode(expected, validate=True)
    except (binascii.Error, ValueError):
        return False
    return wanted == base64.b64decode(blob.hashes["quickXorHash"])


def _range_headers(spool: _Spool) -> dict[str, str]:
    """Identity encoding (byte offsets are offsets in the file), plus Range when resuming."""
    headers = {"Accept-Encoding": "identity"}
    if not spool.offset:
        return headers
    headers["Range"] = f"bytes={spool.offset}-"
    if spool.validator:
        headers["If-Range"] = spool.validator
    return headers


def _range_start(content_range: str | None) -> int | None:
    match = _CONTENT_RANGE.match(content_range or "")
    return int(match.group(1)) if match else None


def _check_complete(response: httpx.Response, received: int) -> None:
    """A body shorter than its Content-Length is a broken transfer: resume it."""
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.isdigit() and received < int(announced):
        raise TruncatedBody(f"received {received} of {announced} announced bytes")


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
