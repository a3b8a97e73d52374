"""Content still arriving: a bounded buffer between a download on the event loop and an
upload in a target's worker thread, so a large file's download and upload overlap.

The download writes every chunk to its spool file (hashed, as ever) and hands it to the
buffer; the target takes the chunks once, as they come (`take`). The buffer holds a few
chunks: a slow upload holds the download back, so memory stays flat whatever the size.
When the download ends, its verdict (the spooled, checked `Blob`, or the error) is
`result()`; a target publishes what it streamed only if that verdict is the very bytes
it sent (`sent_whole`). Whoever wants the content another way (a second attempt, a
target that does not stream, a lookup that needs the hash) calls `result()` first: the
buffer is then dropped and the download goes on into the spool file alone, which the
content is read from.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Final

from .errors import Retriable
from .model import Blob


class StreamAbandoned(Retriable):
    """The bytes streamed so far are not the content's, or the buffer was dropped: the
    upload stops; the content is still to be had from `result()`."""


BUFFER_CHUNKS = 4  # chunks held between the download and the upload
CHUNK_BYTES = 1 << 20  # the download's reads are gathered into chunks of this size

_END: Final = b""  # no chunk is empty: the marker of the last one


class ContentFeed:
    """One download's live bytes (see the module's docstring); `Blob.live` of a payload.

    Loop side: `push`, `end`, `fail_stream`, `finish`. Thread side: `take`, `result`.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, size: int, chunks: int = BUFFER_CHUNKS
    ) -> None:
        self._loop = loop
        self.size = size  # the length the upload announces: the stream must give that
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(chunks)
        self._gathered: list[bytes] = []  # reads not handed on yet (one hop per chunk)
        self._gathered_bytes = 0
        self._verdict: concurrent.futures.Future[Blob] = concurrent.futures.Future()
        self._taken = False
        self._flowing = True  # the buffer is fed; False once dropped or spoilt
        self._whole = False  # every byte went through the buffer, in order, once
        self._streamed: Blob | None = None  # the copy whose bytes went through
        self.task: asyncio.Task[None] | None = None  # the download, for `discard`
        # told each chunk's length as it arrives, for progress within a large file
        self.on_bytes: Callable[[int], None] | None = None

    # -- the download's side (event loop) --

    async def push(self, chunk: bytes) -> None:
        """Hand bytes on, `CHUNK_BYTES` at a time; waits while the buffer is full (the
        upload is behind)."""
        if self._flowing and chunk:
            if self.on_bytes is not None:
                self.on_bytes(len(chunk))
            self._gathered.append(chunk)
            self._gathered_bytes += len(chunk)
            if self._gathered_bytes >= CHUNK_BYTES:
                await self._hand_on()

    async def _hand_on(self) -> None:
        if self._gathered:
            chunk = b"".join(self._gathered)
            self._gathered.clear()
            self._gathered_bytes = 0
            await self._queue.put(chunk)

    async def end(self) -> None:
        """Every byte was pushed."""
        if self._flowing:
            await self._hand_on()
            self._whole = True
            await self._queue.put(_END)

    def fail_stream(self, reason: str) -> None:
        """The bytes pushed so far are not the content's (the server started again): the
        upload fails with `Retriable`; the download goes on into its spool file."""
        if self._flowing:
            self._flowing = False
            self._drain()
            self._queue.put_nowait(StreamAbandoned(f"streamed content abandoned: {reason}", 0.0))

    def finish(self, blob: Blob | None, error: BaseException | None = None) -> None:
        """The download's verdict: its checked `Blob`, or why there is none."""
        if error is not None:
            if not self._whole:  # else the upload ends, then hears the verdict
                self.fail_stream(str(error) or type(error).__name__)
            self._verdict.set_exception(error)
        else:
            assert blob is not None
            self._verdict.set_result(blob)

    # -- the target's side (a worker thread) --

    def take(self) -> Iterator[bytes] | None:
        """The chunks as they arrive, for the first taker only (None after: read the
        spool file through `result()`). Raises `StreamAbandoned` when the stream is."""
        if self._taken or not self._flowing:
            return None
        self._taken = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if isinstance(chunk, BaseException):
                raise chunk
            if chunk == _END:
                return
            yield chunk

    def result(self) -> Blob:
        """The whole content, spooled and checked, once the download ended (blocking; from
        a worker thread). Drops the buffer first, so the download never waits for it."""
        if not self._verdict.done():
            self._loop.call_soon_threadsafe(self._drop)
        return self._verdict.result()

    def sent_whole(self, blob: Blob) -> bool:
        """Whether `blob` (the verdict) holds exactly the bytes the stream gave."""
        return self._whole and self._streamed is blob

    async def finished(self) -> Blob:
        """`result()` for the event loop."""
        self._drop()
        return await asyncio.wrap_future(self._verdict)

    def discard(self) -> None:
        """Stop the download and remove its spool file (event loop)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()  # the download removes its own file
            return
        if self._verdict.done() and self._verdict.exception() is None:
            self._verdict.result().discard()

    # -- internals --

    def streamed(self, blob: Blob) -> None:
        """Record `blob` as the copy whose bytes went through the buffer (loop side)."""
        self._streamed = blob

    def _drop(self) -> None:
        if self._flowing:
            self._flowing = False
            self._drain()
            if self._taken:  # wake a reader still waiting, if any
                self._queue.put_nowait(StreamAbandoned("streamed content dropped", 0.0))

    def _drain(self) -> None:
        self._gathered.clear()
        self._gathered_bytes = 0
        while not self._queue.empty():
            self._queue.get_nowait()
