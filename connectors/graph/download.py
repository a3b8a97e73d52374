"""Streaming download of a driveItem's content into a `Blob`, resumable and hashed on the way.

Graph answers `GET /drives/{d}/items/{i}/content` with 302 Found to a short-lived,
pre-authenticated URL; the bytes come from there, without the Graph token (some
download hosts refuse a request that carries one), and a partial range is asked of
that URL, not of `/content`:
https://learn.microsoft.com/en-us/graph/api/driveitem-get-content#partial-range-downloads

The body is written to a temporary file in chunks while QuickXorHash and SHA-256 are
updated, so memory stays flat whatever the size; a file Graph lists at `memory_bytes` or
less is held in memory instead and hashed once complete (no file to create, write and
delete on the event loop: the per-file cost of a drive of small files), unless its body
turns out larger than that: then it goes on in a temporary file. A dropped
connection or a body shorter than announced resumes with `Range: bytes=N-` (guarded by
`If-Range` when the first answer gave a validator); an expired link is replaced by a fresh
one from `/content`. At the end, the QuickXorHash is compared with the one Graph published.

A file of `stream_bytes` or more can be streamed (`stream`): the download runs on while
its chunks, still written to the spool file and hashed, go to the target through a
`ContentFeed`'s bounded buffer; its verdict (the checked `Blob` or the error, after a
second download if need be) comes when it ends, and the target publishes what it
streamed only if that verdict is the streamed copy. At most `streams` run at once.

SharePoint document libraries rewrite some files after upload (mostly Office documents:
properties written in) and Graph goes on listing the upload's size and hash, so their
downloads never match (https://github.com/OneDrive/onedrive-api-docs/issues/935,
https://github.com/rclone/rclone/issues/2036). A mismatch is therefore downloaded once
more: a second copy that matches wins (the first was damaged on the way); one with the
very same bytes as the first, both complete by the lengths their answers announced
(Content-Length, the Content-Range total: never the listed size, which SharePoint's
change made wrong), is kept in a document library as modified by SharePoint, with both
hashes in its `Blob.remark`. Anything else stays a retriable `ContentMismatch` that says
which case it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ...mappings.quickxor import QuickXorHash, same_quickxor
from ...migrator.errors import Retriable
from ...migrator.feed import ContentFeed
from ...migrator.model import Blob
from .client import GraphClient
from .errors import Call, LinkExpired, TruncatedBody

if TYPE_CHECKING:
    from .links import LinkAnswer

SHAREPOINT = "sharepoint"  # the one tenant-wide resource-unit budget lane of drive requests
DOWNLOAD_RU = 1  # a file download costs one SharePoint resource unit
CHUNK_BYTES = 1 << 20
MEMORY_BYTES = 256 << 10  # files listed at this size or less are downloaded into memory
STREAM_BYTES = 16 << 20  # files listed at this size or more may be streamed to the target
STREAMS = 4  # streamed downloads at once
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
MODIFIED_BY_SHAREPOINT = "modified by SharePoint"  # the remark's note on a file kept as served


class ContentMismatch(Retriable):
    """The downloaded bytes do not hash to the quickXorHash Graph published for the file."""


@dataclass
class _Spool:
    """The temporary file (or, with no `path`, the memory buffer) being filled, its running
    hashes and where the download stands. A memory buffer is hashed once, when complete."""

    file: IO[bytes]
    path: Path | None
    offset: int = 0
    quickxor: QuickXorHash = field(default_factory=QuickXorHash)
    sha256: Any = field(default_factory=hashlib.sha256)
    location: str | None = None  # the pre-authenticated URL, while it works
    validator: str | None = None  # ETag (or Last-Modified) of the first answer, for If-Range
    total: int | None = None  # the content's length as the answers announced it
    feed: ContentFeed | None = None  # where the chunks also go, for a streamed download

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        if self.path is not None:
            self.quickxor.update(chunk)
            self.sha256.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """Forget every byte received: the server sent the whole content again."""
        if self.feed is not None and self.offset:
            self.feed.fail_stream("the server sent the whole content again")
        self.file.seek(0)
        self.file.truncate()
        self.offset = 0
        self.quickxor = QuickXorHash()
        self.sha256 = hashlib.sha256()

    def blob(self) -> Blob:
        data = None
        if self.path is None:
            assert isinstance(self.file, io.BytesIO)
            data = self.file.getvalue()
            self.quickxor.update(data)
            self.sha256.update(data)
        hashes = {"quickXorHash": self.quickxor.b64digest(), "sha256": self.sha256.hexdigest()}
        return Blob(self.path, self.offset, hashes, data=data)

    @property
    def complete(self) -> bool:
        """Whether the server said how long the content is and every byte of it came."""
        return self.total is not None and self.offset == self.total


@dataclass(frozen=True)
class _Copy:
    """One whole download: its content, and whether it is complete by its answers' lengths."""

    blob: Blob
    complete: bool


class DriveDownloader:
    """Downloads driveItem content to spooled temporary files through the SharePoint budget."""

    def __init__(
        self,
        client: GraphClient,
        *,
        temp_dir: Path | None = None,
        lane: str = SHAREPOINT,
        chunk_bytes: int = CHUNK_BYTES,
        memory_bytes: int = MEMORY_BYTES,
        stream_bytes: int = STREAM_BYTES,
        streams: int = STREAMS,
    ) -> None:
        self.client = client
        self.temp_dir = temp_dir
        self.lane = lane
        self.chunk_bytes = chunk_bytes
        self.memory_bytes = memory_bytes
        self.stream_bytes = stream_bytes
        self._streams = asyncio.Semaphore(streams)

    async def download(
        self,
        content_url: str,
        call: Call,
        expected_quickxor: str | None = None,
        *,
        sharepoint_library: bool = False,
        listed_size: int | None = None,
        feed: ContentFeed | None = None,
    ) -> Blob:
        """The content behind `content_url` (a `/content` URL) as a `Blob`.

        When it does not hash to `expected_quickxor`, it is downloaded once more (see the
        module's docstring); `sharepoint_library` allows keeping a file SharePoint changed
        after upload, `listed_size` (Graph's `size`) goes into its remark. Raises
        `ContentMismatch` (retriable) when no copy can be kept, the table's errors
        otherwise; no temporary file is left behind on any failure. The first copy's
        chunks also go to `feed`, when given.
        """
        in_memory = feed is None and listed_size is not None and listed_size <= self.memory_bytes
        first = await self._copy(content_url, call, in_memory, feed)
        received = first.blob.hashes["quickXorHash"]
        if not expected_quickxor or same_quickxor(expected_quickxor, received):
            return first.blob
        first.blob.discard()  # its hashes and length are all the comparison needs
        second = await self._copy(content_url, call, in_memory)
        try:
            return _second_opinion(
                call.what, expected_quickxor, first, second, sharepoint_library, listed_size
            )
        except BaseException:
            second.blob.discard()
            raise

    async def stream(
        self,
        content_url: str,
        call: Call,
        expected_quickxor: str | None,
        *,
        listed_size: int,
        sharepoint_library: bool = False,
    ) -> Blob:
        """A live `Blob` of the content behind `content_url`: `download` runs on in a task,
        its chunks fed to `Blob.live` as they come (see the module's docstring). Waits
        while `streams` downloads are already streaming."""
        await self._streams.acquire()
        feed = ContentFeed(asyncio.get_running_loop(), listed_size)

        async def run() -> None:
            try:
                blob = await self.download(
                    content_url,
                    call,
                    expected_quickxor,
                    sharepoint_library=sharepoint_library,
                    listed_size=listed_size,
                    feed=feed,
                )
            except BaseException as error:
                feed.finish(None, error)
                if not isinstance(error, Exception):
                    raise
            else:
                feed.finish(blob)
            finally:
                self._streams.release()

        feed.task = asyncio.create_task(run())
        return Blob(None, listed_size, {}, live=feed)

    async def _copy(
        self, content_url: str, call: Call, in_memory: bool, feed: ContentFeed | None = None
    ) -> _Copy:
        """One whole download, unchecked; the temporary file is removed on any failure."""
        spool = _Spool(io.BytesIO(), None) if in_memory else self._open_spool()
        spool.feed = feed
        try:
            await self._fill(spool, content_url, call)
            if feed is not None:
                await feed.end()
            blob = spool.blob()
            spool.file.close()
            if feed is not None:
                feed.streamed(blob)
            return _Copy(blob, spool.complete)
        except BaseException:
            spool.file.close()
            if spool.path is not None:
                _unlink(spool.path)
            raise

    def empty(self) -> Blob:
        """A zero-byte `Blob` with its hashes, for files Graph lists as empty (no request)."""
        return _Spool(io.BytesIO(), None).blob()

    def _open_spool(self) -> _Spool:
        """A fresh temporary file in `temp_dir` (made when missing: no stat per file)."""
        try:
            handle, name = self._mkstemp()
        except FileNotFoundError:
            assert self.temp_dir is not None
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            handle, name = self._mkstemp()
        return _Spool(os.fdopen(handle, "wb"), Path(name))

    def _mkstemp(self) -> tuple[int, str]:
        return tempfile.mkstemp(prefix="hirondelle-drive-", suffix=".part", dir=self.temp_dir)

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
                feed = spool.feed
                if feed is not None and spool.total != feed.size:
                    feed.fail_stream(f"{spool.total} bytes announced, {feed.size} listed")
                if (spool.total or 0) > self.memory_bytes:
                    self._spill(spool)
                # a memory buffer takes the chunks as they come; a file, 1 MiB writes
                size = self.chunk_bytes if spool.path is not None else None
                async for chunk in response.aiter_bytes(size):
                    spool.write(chunk)
                    received += len(chunk)
                    if feed is not None:
                        await feed.push(chunk)
                    if spool.offset > self.memory_bytes:
                        self._spill(spool)
                _check_complete(response, received)
                if spool.total is not None and spool.offset < spool.total:
                    raise TruncatedBody(f"have {spool.offset} of {spool.total} bytes")
        except LinkExpired:
            spool.location = None
            raise

    def _spill(self, spool: _Spool) -> None:
        """Go on in a temporary file when a body held in memory outgrows `memory_bytes`:
        the listed size that chose memory is not the size served (SharePoint's rewrites),
        and memory must stay bounded whatever a server sends."""
        if spool.path is not None:
            return
        assert isinstance(spool.file, io.BytesIO)
        held = spool.file.getvalue()
        target = self._open_spool()
        spool.file.close()
        spool.file, spool.path = target.file, target.path
        spool.file.write(held)
        spool.quickxor.update(held)
        spool.sha256.update(held)

    @staticmethod
    def _accept(response: LinkAnswer, spool: _Spool) -> int:
        """Line the answer up with the spool; return the bytes of this answer counted so far."""
        total = _announced_total(response)
        if response.status_code == 206:
            start = _range_start(response.headers.get("Content-Range"))
            known = spool.total
            if start == spool.offset and (known is None or total in (None, known)):
                spool.total = known if total is None else total
                return 0
            offset = spool.offset
            spool.restart()
            raise Retriable(
                f"asked for bytes from {offset} of {known}, got "
                f"{response.headers.get('Content-Range')!r}",
                0.0,
            )
        if spool.offset:
            spool.restart()  # 200: the server ignored Range, or If-Range saw a new version
        spool.validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        spool.total = total
        return 0


def _second_opinion(
    what: str,
    expected: str,
    first: _Copy,
    second: _Copy,
    sharepoint_library: bool,
    listed_size: int | None,
) -> Blob:
    """The copy to keep after a first one that did not match Graph's quickXorHash, or
    `ContentMismatch` saying why none is kept (the first copy's file is already gone)."""
    blob = second.blob
    received = blob.hashes["quickXorHash"]
    if same_quickxor(expected, received):
        return blob  # the first copy was damaged on the way
    if blob.hashes != first.blob.hashes:
        raise ContentMismatch(
            f"{what}: two downloads gave different bytes ({first.blob.size} and {blob.size} "
            "bytes), neither with the quickXorHash Graph published: the file is changing, "
            "or the transfers were damaged"
        )
    if not (first.complete and second.complete):
        raise ContentMismatch(
            f"{what}: the same {blob.size} bytes came twice, unlike the quickXorHash Graph "
            "published, but the server did not announce their length: a file SharePoint "
            "changed cannot be told from a cut one"
        )
    if not sharepoint_library:
        raise ContentMismatch(
            f"{what}: the same {blob.size} bytes came twice, unlike the quickXorHash Graph "
            "published; only SharePoint document libraries are known to change files after "
            "upload, so they are not kept here"
        )
    remark: dict[str, Any] = {
        "note": MODIFIED_BY_SHAREPOINT,
        "published_quickXorHash": expected,
        "received_quickXorHash": received,
    }
    if listed_size is not None:
        remark["published_size"] = listed_size
    return replace(blob, remark=remark)


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


def _announced_total(response: LinkAnswer) -> int | None:
    """The whole content's length as the answer announced it: the Content-Range total of
    a 206, the Content-Length of a 200 (asked with identity encoding); None if unsaid."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range") or "")
        return int(match.group(3)) if match and match.group(3).isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def _check_complete(response: LinkAnswer, received: int) -> None:
    """A body shorter than its Content-Length is a broken transfer: resume it."""
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.isdigit() and received < int(announced):
        raise TruncatedBody(f"received {received} of {announced} announced bytes")


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
