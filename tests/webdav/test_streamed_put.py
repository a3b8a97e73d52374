"""A large download streamed into each real WebDAV server while it arrives: published
whole once its hash is checked, never when it fails, once after a cut and resume."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import respx

from hirondelle.connectors.graph.download import ContentMismatch, DriveDownloader
from hirondelle.connectors.webdav_files import PART_SUFFIX
from hirondelle.mappings.files import map_drive_item
from hirondelle.mappings.quickxor import quickxor_b64
from hirondelle.migrator.feed import ContentFeed
from hirondelle.migrator.model import Item, Payload, TargetRef
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph_drives.conftest import drive_client
from hirondelle.tests.graph_drives.test_download import (
    BODY,
    CALL,
    CONTENT_URL,
    LINK,
    CutStream,
    ranged,
    redirect,
)

from .conftest import DavUser

ITEM = Item(
    "01FILE",
    "v1",
    {
        "kind": "file",
        "name": "big.bin",
        "path": "Videos/big.bin",
        "size": len(BODY),
        "mtime": "2024-05-06T07:08:09Z",
        "quickXorHash": quickxor_b64(BODY),
    },
)
Answer = Callable[[httpx.Request], httpx.Response]


def stream_into(
    dav: DavUser, spool: Path, fake_time: FakeTime, answer: Answer, expected: str
) -> tuple[TargetRef | BaseException, Payload, str]:
    """Download `ITEM` through `answer` as a live payload and `put` it while it arrives.
    Returns the put's ref (or error), the live payload and the drive's folder."""

    async def go() -> tuple[TargetRef | BaseException, Payload, str]:
        loop = asyncio.get_running_loop()
        client = drive_client(fake_time)
        session = dav.session()
        try:
            folder = await loop.run_in_executor(None, session.ensure_container, dav.drive())
            downloader = DriveDownloader(
                client, temp_dir=spool, chunk_bytes=65536, stream_bytes=1 << 20
            )
            blob = await downloader.stream(CONTENT_URL, CALL, expected, listed_size=len(BODY))
            payload = map_drive_item(ITEM, blob)
            assert payload.live and payload.fingerprint == ""
            try:
                ref: TargetRef | BaseException = await loop.run_in_executor(
                    None, session.put, folder, payload
                )
            except Exception as error:  # noqa: BLE001 - the test looks at it
                ref = error
            return ref, payload, folder
        finally:
            await client.aclose()

    with respx.mock() as mock:  # the WebDAV server is reached through urllib3, not httpx
        redirect(mock)
        mock.get(LINK).mock(side_effect=answer)
        return asyncio.run(go())


def files_under(dav: DavUser, folder: str) -> list[Path]:
    root = dav.on_disk(folder)
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_streamed_download_lands_whole_with_its_hash_checked(
    dav: DavUser, tmp_path: Path, fake_time: FakeTime
) -> None:
    ref, payload, folder = stream_into(
        dav, tmp_path / "spool", fake_time, ranged, quickxor_b64(BODY)
    )
    assert isinstance(ref, TargetRef), ref
    assert payload.blob is not None and isinstance(payload.blob.live, ContentFeed)
    feed = payload.blob.live
    settled = payload.settled()
    assert settled.blob is not None
    assert feed.sent_whole(settled.blob)  # streamed, not re-read
    assert settled.fingerprint == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert [p.name for p in files_under(dav, folder)] == ["big.bin"]
    assert dav.on_disk(folder, ref.ref).read_bytes() == BODY
    settled.blob.discard()
    assert list((tmp_path / "spool").iterdir()) == []


def test_bytes_that_do_not_match_the_hash_publish_nothing_and_leave_no_part_file(
    dav: DavUser, tmp_path: Path, fake_time: FakeTime
) -> None:
    ref, payload, folder = stream_into(
        dav, tmp_path / "spool", fake_time, ranged, quickxor_b64(b"other bytes")
    )
    assert isinstance(ref, ContentMismatch), ref
    assert files_under(dav, folder) == []  # neither big.bin nor its part file
    with pytest.raises(ContentMismatch):
        payload.settled()
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_download_cut_midway_resumes_into_the_same_upload_and_lands_once(
    dav: DavUser, tmp_path: Path, fake_time: FakeTime
) -> None:
    half = len(BODY) // 2 + 7
    first = httpx.Response(
        200,
        headers={"Content-Length": str(len(BODY)), "ETag": '"v1"'},
        stream=CutStream(BODY[:half], httpx.ReadError("connection reset by peer")),
    )
    answers = iter([first])
    ranges: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        ranges.append(request.headers.get("Range"))
        return next(answers, None) or ranged(request)

    ref, payload, folder = stream_into(
        dav, tmp_path / "spool", fake_time, answer, quickxor_b64(BODY)
    )
    assert isinstance(ref, TargetRef), ref
    assert ranges[0] is None and ranges[1] is not None  # resumed with Range
    settled = payload.settled()
    assert payload.blob is not None and payload.blob.live is not None
    assert settled.blob is not None
    assert payload.blob.live.sent_whole(settled.blob)
    assert [p.name for p in files_under(dav, folder)] == ["big.bin"]
    assert dav.on_disk(folder, ref.ref).read_bytes() == BODY


def test_a_second_copy_that_wins_replaces_the_damaged_streamed_one(
    dav: DavUser, tmp_path: Path, fake_time: FakeTime
) -> None:
    damaged = bytearray(BODY)
    damaged[12345] ^= 0xFF
    answers = iter([httpx.Response(200, content=bytes(damaged), headers={"ETag": '"v1"'})])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or ranged(request)

    ref, payload, folder = stream_into(
        dav, tmp_path / "spool", fake_time, answer, quickxor_b64(BODY)
    )
    assert isinstance(ref, TargetRef), ref
    settled = payload.settled()
    assert payload.blob is not None and payload.blob.live is not None
    assert settled.blob is not None
    assert not payload.blob.live.sent_whole(settled.blob)
    assert [p.name for p in files_under(dav, folder)] == ["big.bin"]
    assert dav.on_disk(folder, ref.ref).read_bytes() == BODY
    assert not any(p.name.endswith(PART_SUFFIX) for p in files_under(dav, folder))


def test_a_download_that_starts_over_is_uploaded_from_its_spool_file(
    dav: DavUser, tmp_path: Path, fake_time: FakeTime
) -> None:
    """The server ignores Range after a cut: the bytes streamed are void; the upload
    starts again from the spool file, without a third download."""
    cut = httpx.Response(
        200,
        headers={"Content-Length": str(len(BODY))},
        stream=CutStream(BODY[:1_500_000], httpx.ReadError("reset")),
    )
    answers = iter([cut])
    calls: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("Range"))
        return next(answers, None) or httpx.Response(200, content=BODY)

    ref, payload, folder = stream_into(
        dav, tmp_path / "spool", fake_time, answer, quickxor_b64(BODY)
    )
    assert isinstance(ref, TargetRef), ref
    assert len(calls) == 2
    settled = payload.settled()
    assert payload.blob is not None and payload.blob.live is not None
    assert settled.blob is not None
    assert not payload.blob.live.sent_whole(settled.blob)
    assert [p.name for p in files_under(dav, folder)] == ["big.bin"]
    assert dav.on_disk(folder, ref.ref).read_bytes() == BODY
