"""Streaming downloads against odd answers: redirects, resets, short bodies, bad hashes."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx

from hirondelle.connectors.graph.download import ContentMismatch, DriveDownloader
from hirondelle.connectors.graph.errors import Call
from hirondelle.mappings.quickxor import quickxor_b64
from hirondelle.migrator.errors import FatalError, Retriable
from hirondelle.migrator.model import Blob
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import run

from .conftest import DOWNLOAD_HOST, GRAPH, drive_client, resource_units

CONTENT_URL = f"{GRAPH}/drives/b!drive/items/01FILE/content"
LINK = f"{DOWNLOAD_HOST}/personal/alice/_layouts/download.aspx?tempauth=abc"
BODY = random.Random(5).randbytes(3 * 1024 * 1024 + 123)
CALL = Call("content of 'Docs/report.pdf'", permission="Files.Read.All", item=True)
LISTED = len(BODY) - 183  # the size Graph lists for a file SharePoint grew after upload
UPLOADED = quickxor_b64(BODY[:LISTED])  # the hash Graph lists for it
IN_MEMORY = {"file": 0, "memory": 2 * len(BODY)}  # DriveDownloader.memory_bytes per mode
memory_bytes = 0


@pytest.fixture(autouse=True, params=sorted(IN_MEMORY))
def spool_mode(request: pytest.FixtureRequest) -> str:
    """Every test runs twice: content spooled to a file, and held in memory."""
    global memory_bytes
    memory_bytes = IN_MEMORY[request.param]
    return str(request.param)


class CutStream(httpx.AsyncByteStream):
    """A body that stops after `data`, with a reset (`error`) or silently."""

    def __init__(self, data: bytes, error: Exception | None = None) -> None:
        self.data = data
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), 65536):
            yield self.data[start : start + 65536]
        if self.error is not None:
            raise self.error


def range_start(header: str) -> int:
    """The first byte a `Range: bytes=N-` header asks for."""
    match = re.fullmatch(r"bytes=(\d+)-", header)
    assert match is not None, header
    return int(match[1])


def ranged(request: httpx.Request, etag: str = '"v1"') -> httpx.Response:
    """The download host: whole body, or the asked range as 206."""
    wanted = request.headers.get("Range")
    if not wanted:
        return httpx.Response(200, content=BODY, headers={"ETag": etag})
    start = range_start(wanted)
    headers = {"Content-Range": f"bytes {start}-{len(BODY) - 1}/{len(BODY)}", "ETag": etag}
    return httpx.Response(206, content=BODY[start:], headers=headers)


def redirect(mock: respx.MockRouter, location: str = LINK) -> respx.Route:
    return mock.get(CONTENT_URL).mock(
        return_value=httpx.Response(302, headers={"Location": location})
    )


def download(
    fake_time: FakeTime, tmp_path: Path, expected: str | None, library: bool = False
) -> tuple[Blob, int]:
    async def go() -> tuple[Blob, int]:
        client = drive_client(fake_time)
        try:
            downloader = DriveDownloader(
                client, temp_dir=tmp_path, chunk_bytes=65536, memory_bytes=memory_bytes
            )
            blob = await downloader.download(
                CONTENT_URL, CALL, expected, sharepoint_library=library, listed_size=LISTED
            )
            return blob, resource_units(client)
        finally:
            await client.aclose()

    return run(go())


def assert_is_body(blob: Blob) -> None:
    assert blob.size == len(BODY)
    assert blob.read_bytes() == BODY
    assert blob.hashes == {
        "quickXorHash": quickxor_b64(BODY),
        "sha256": hashlib.sha256(BODY).hexdigest(),
    }


def test_redirect_is_followed_without_the_graph_token(fake_time: FakeTime, tmp_path: Path) -> None:
    with respx.mock() as mock:
        content = redirect(mock)
        link = mock.get(LINK).mock(side_effect=ranged)
        blob, units = download(fake_time, tmp_path, quickxor_b64(BODY))
    assert content.calls.last.request.headers["Authorization"] == "Bearer test-token"
    assert "Authorization" not in link.calls.last.request.headers
    assert link.calls.last.request.headers["Accept-Encoding"] == "identity"
    assert_is_body(blob)
    if memory_bytes:
        assert blob.path is None and blob.data == BODY
        assert list(tmp_path.iterdir()) == []  # nothing written to disk
    else:
        assert blob.path is not None and blob.data is None
        assert blob.path.parent == tmp_path and blob.path.name.endswith(".part")
    assert units == 1


def test_reset_in_the_middle_resumes_with_range(fake_time: FakeTime, tmp_path: Path) -> None:
    half = len(BODY) // 2 + 7
    answers = iter(
        [
            httpx.Response(
                200,
                headers={"Content-Length": str(len(BODY)), "ETag": '"v1"'},
                stream=CutStream(BODY[:half], httpx.ReadError("connection reset by peer")),
            )
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or ranged(request)

    with respx.mock() as mock:
        content = redirect(mock)
        link = mock.get(LINK).mock(side_effect=answer)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY))
    resumed = link.calls.last.request.headers
    start = range_start(resumed["Range"])
    assert 0 < start <= half  # what was written before the reset is kept, not fetched again
    assert resumed["If-Range"] == '"v1"'
    assert content.call_count == 1  # the link still worked: no new one was asked for
    assert_is_body(blob)


def test_short_body_without_error_resumes(fake_time: FakeTime, tmp_path: Path) -> None:
    cut = 1_000_001
    answers = iter(
        [
            httpx.Response(
                200,
                headers={"Content-Length": str(len(BODY)), "ETag": '"v1"'},
                stream=CutStream(BODY[:cut]),
            )
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or ranged(request)

    with respx.mock() as mock:
        redirect(mock)
        link = mock.get(LINK).mock(side_effect=answer)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY))
    assert link.call_count == 2
    assert link.calls.last.request.headers["Range"] == f"bytes={cut}-"  # the stream ended cleanly
    assert_is_body(blob)


def test_whole_body_again_on_resume_starts_over(fake_time: FakeTime, tmp_path: Path) -> None:
    """A server that ignores Range (or whose If-Range saw a new version) sends 200: restart."""
    answers = iter(
        [
            httpx.Response(
                200,
                headers={"Content-Length": str(len(BODY))},
                stream=CutStream(BODY[:200_000], httpx.RemoteProtocolError("peer closed")),
            )
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or httpx.Response(200, content=BODY)

    with respx.mock() as mock:
        redirect(mock)
        link = mock.get(LINK).mock(side_effect=answer)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY))
    assert link.calls.last.request.headers["Range"].startswith("bytes=")
    assert link.calls.last.request.headers["Range"] != "bytes=0-"
    assert_is_body(blob)


def test_expired_link_is_replaced_by_a_fresh_one(fake_time: FakeTime, tmp_path: Path) -> None:
    fresh = f"{DOWNLOAD_HOST}/fresh?tempauth=def"
    with respx.mock() as mock:
        content = mock.get(CONTENT_URL).mock(
            side_effect=[
                httpx.Response(302, headers={"Location": LINK}),
                httpx.Response(302, headers={"Location": fresh}),
            ]
        )
        mock.get(LINK).mock(return_value=httpx.Response(401, json={"error": "expired"}))
        mock.get(fresh).mock(side_effect=ranged)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY))
    assert content.call_count == 2
    assert_is_body(blob)


def test_relative_location_is_resolved_against_graph(fake_time: FakeTime, tmp_path: Path) -> None:
    with respx.mock() as mock:
        redirect(mock, "/_download/token-1")
        mock.get("https://graph.test/_download/token-1").mock(side_effect=ranged)
        blob, _ = download(fake_time, tmp_path, None)
    assert_is_body(blob)


def test_hash_mismatch_is_retriable_and_leaves_no_file(fake_time: FakeTime, tmp_path: Path) -> None:
    wrong = quickxor_b64(BODY[:-1] + b"\x00")
    with respx.mock() as mock:
        redirect(mock)
        mock.get(LINK).mock(side_effect=ranged)
        with pytest.raises(ContentMismatch) as caught:
            download(fake_time, tmp_path, wrong)
    assert isinstance(caught.value, Retriable)
    assert list(tmp_path.iterdir()) == []


def test_resets_without_progress_give_up_and_clean_up(fake_time: FakeTime, tmp_path: Path) -> None:
    with respx.mock() as mock:
        redirect(mock)
        link = mock.get(LINK).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(Retriable):
            download(fake_time, tmp_path, None)
    assert link.call_count == 6  # the budget's attempts, none of which moved forward
    assert list(tmp_path.iterdir()) == []


def test_throttled_content_request_waits_retry_after(fake_time: FakeTime, tmp_path: Path) -> None:
    throttled = httpx.Response(
        429,
        headers={
            "Retry-After": "7",
            "RateLimit-Limit": "1250",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": "41",
        },
        json={"error": {"code": "TooManyRequests", "message": "slow down"}},
    )
    with respx.mock() as mock:
        content = mock.get(CONTENT_URL).mock(
            side_effect=[throttled, httpx.Response(302, headers={"Location": LINK})]
        )
        mock.get(LINK).mock(side_effect=ranged)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY))
    assert content.call_count == 2
    assert 7 in fake_time.sleeps
    assert_is_body(blob)


def test_refused_token_on_content_is_fatal_not_an_expired_link(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    """401 from Graph itself names the credential to fix; only the download host's means expiry."""
    with respx.mock() as mock:
        content = mock.get(CONTENT_URL).mock(
            return_value=httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})
        )
        with pytest.raises(FatalError, match="source.client_id"):
            download(fake_time, tmp_path, None)
    assert content.call_count == 1
    assert list(tmp_path.iterdir()) == []


# -- a file SharePoint changed after upload: its downloads never match the listed hash --
# https://github.com/OneDrive/onedrive-api-docs/issues/935, rclone/rclone#2036


def test_the_same_bytes_twice_in_a_library_are_kept_as_modified_by_sharepoint(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    with respx.mock() as mock:
        content = redirect(mock)
        link = mock.get(LINK).mock(side_effect=ranged)
        blob, units = download(fake_time, tmp_path, UPLOADED, library=True)
    assert content.call_count == link.call_count == 2  # downloaded once more, no more
    assert units == 2
    assert_is_body(blob)
    assert blob.remark == {
        "note": "modified by SharePoint",
        "published_quickXorHash": UPLOADED,
        "received_quickXorHash": quickxor_b64(BODY),
        "published_size": LISTED,
    }
    assert list(tmp_path.iterdir()) == spooled(blob)  # the first copy is gone


def test_the_same_bytes_twice_outside_a_library_stay_a_mismatch(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    with respx.mock() as mock:
        redirect(mock)
        link = mock.get(LINK).mock(side_effect=ranged)
        with pytest.raises(ContentMismatch, match="only SharePoint document libraries"):
            download(fake_time, tmp_path, UPLOADED, library=False)
    assert link.call_count == 2
    assert list(tmp_path.iterdir()) == []


def test_two_downloads_that_differ_stay_a_mismatch_that_says_so(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    other = BODY[:-1] + b"\x01"
    bodies = iter([BODY, other])

    def changing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=next(bodies))

    with respx.mock() as mock:
        redirect(mock)
        mock.get(LINK).mock(side_effect=changing)
        with pytest.raises(ContentMismatch, match="two downloads gave different bytes"):
            download(fake_time, tmp_path, UPLOADED, library=True)
    assert list(tmp_path.iterdir()) == []


def test_a_second_download_that_matches_wins_without_a_remark(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    damaged = BODY[:1000] + b"\xff" + BODY[1001:]
    bodies = iter([damaged, BODY])

    def once_damaged(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=next(bodies))

    with respx.mock() as mock:
        redirect(mock)
        mock.get(LINK).mock(side_effect=once_damaged)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY), library=True)
    assert_is_body(blob)
    assert blob.remark == {}
    assert list(tmp_path.iterdir()) == spooled(blob)


def test_bytes_without_an_announced_length_are_never_kept(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    """Twice the same bytes, but nothing says they are all: a cut copy looks the same."""

    def unannounced(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CutStream(BODY[: LISTED // 2]))  # no Content-Length

    with respx.mock() as mock:
        redirect(mock)
        mock.get(LINK).mock(side_effect=unannounced)
        with pytest.raises(ContentMismatch, match="did not announce their length"):
            download(fake_time, tmp_path, UPLOADED, library=True)
    assert list(tmp_path.iterdir()) == []


def test_a_body_cut_at_the_same_place_every_time_is_never_kept(
    fake_time: FakeTime, tmp_path: Path
) -> None:
    """Its announced length says it is cut: resumed, never taken as SharePoint's change."""
    cut = LISTED // 2

    def always_cut(request: httpx.Request) -> httpx.Response:
        wanted = request.headers.get("Range")
        start = int(wanted[len("bytes=") : -1]) if wanted else 0
        headers = {"Content-Length": str(len(BODY) - start), "ETag": '"v1"'}
        if wanted:
            headers["Content-Range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        return httpx.Response(
            206 if wanted else 200, headers=headers, stream=CutStream(BODY[start:cut])
        )

    with respx.mock() as mock:
        redirect(mock)
        link = mock.get(LINK).mock(side_effect=always_cut)
        with pytest.raises(Retriable) as caught:
            download(fake_time, tmp_path, UPLOADED, library=True)
    assert not isinstance(caught.value, ContentMismatch)  # it never got as far as comparing
    assert all(r.request.headers.get("Range") == f"bytes={cut}-" for r in link.calls[1:])
    assert list(tmp_path.iterdir()) == []


def test_a_range_answer_of_another_length_starts_over(fake_time: FakeTime, tmp_path: Path) -> None:
    """The file changed between two answers: the resumed part is not glued to the first."""
    cut = 1_000_001
    answers = iter(
        [
            httpx.Response(
                200,
                headers={"Content-Length": str(len(BODY) + 5), "ETag": '"v1"'},
                stream=CutStream((BODY + b"older")[:cut]),
            )
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or ranged(request)

    with respx.mock() as mock:
        redirect(mock)
        link = mock.get(LINK).mock(side_effect=answer)
        blob, _ = download(fake_time, tmp_path, quickxor_b64(BODY))
    assert link.calls[1].request.headers["Range"] == f"bytes={cut}-"
    assert "Range" not in link.calls.last.request.headers  # started over
    assert_is_body(blob)


def spooled(blob: Blob) -> list[Path]:
    """The temporary files a blob holds: its spool file, none when it is in memory."""
    return [blob.path] if blob.path is not None else []
