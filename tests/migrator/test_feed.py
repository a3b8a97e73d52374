"""The bounded buffer between a download and an upload."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hirondelle.migrator.feed import BUFFER_CHUNKS, CHUNK_BYTES, ContentFeed, StreamAbandoned
from hirondelle.migrator.model import Blob


def chunk(number: int) -> bytes:
    return bytes([number]) * CHUNK_BYTES


def test_a_full_buffer_holds_the_download_back_until_the_upload_reads() -> None:
    async def go() -> list[bytes]:
        feed = ContentFeed(asyncio.get_running_loop(), (BUFFER_CHUNKS + 2) * CHUNK_BYTES)
        for number in range(BUFFER_CHUNKS):
            for half in (chunk(number)[: CHUNK_BYTES // 2], chunk(number)[CHUNK_BYTES // 2 :]):
                await feed.push(half)  # reads are gathered into whole chunks
        blocked = asyncio.create_task(feed.push(chunk(BUFFER_CHUNKS)))
        for _ in range(20):
            await asyncio.sleep(0)  # let the push run as far as it can
        assert not blocked.done()  # the buffer holds BUFFER_CHUNKS chunks, no more
        chunks = feed.take()
        assert chunks is not None and feed.take() is None  # one taker only
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.extend(chunks))
        reader.start()
        await blocked
        await feed.push(b"tail")
        await feed.end()
        await asyncio.to_thread(reader.join)
        return received

    expected = [chunk(number) for number in range(BUFFER_CHUNKS + 1)] + [b"tail"]
    assert asyncio.run(go()) == expected


def test_a_stream_that_starts_over_fails_the_reader_but_not_the_verdict() -> None:
    async def go() -> None:
        feed = ContentFeed(asyncio.get_running_loop(), 3)
        chunks = feed.take()
        assert chunks is not None
        await feed.push(b"a")
        feed.fail_stream("the server sent the whole content again")
        await feed.push(b"b")  # not handed on any more
        blob = Blob(None, 3, {"sha256": "x"}, data=b"abc")
        feed.finish(blob)
        with pytest.raises(StreamAbandoned):
            await asyncio.to_thread(list, chunks)
        assert await asyncio.to_thread(feed.result) is blob
        assert not feed.sent_whole(blob)

    asyncio.run(go())
