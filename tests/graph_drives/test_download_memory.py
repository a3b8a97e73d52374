"""A file is held in memory only while its body stays small: Graph's listed size is not
the size served (SharePoint rewrites files after upload), so a body announced or grown
far past the memory limit goes on in a temporary file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
import respx

from hirondelle.connectors.graph.download import DriveDownloader
from hirondelle.mappings.quickxor import quickxor_b64
from hirondelle.migrator.model import Blob
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import run

from .conftest import drive_client
from .test_download import BODY, CALL, CONTENT_URL, LINK, CutStream, redirect

MEMORY = 64 * 1024  # BODY is 3 MiB: far past it


@pytest.mark.parametrize("announced", [True, False])
def test_a_body_far_larger_than_listed_is_spooled_to_a_file(
    fake_time: FakeTime, tmp_path: Path, announced: bool
) -> None:
    headers = {"Content-Length": str(len(BODY))} if announced else {}

    async def go() -> Blob:
        client = drive_client(fake_time)
        try:
            downloader = DriveDownloader(client, temp_dir=tmp_path, memory_bytes=MEMORY)
            with respx.mock(assert_all_called=False) as mock:
                redirect(mock)
                stream = CutStream(BODY)  # no Content-Length: the size is learnt on the way
                mock.get(LINK).mock(
                    return_value=httpx.Response(200, headers=headers, stream=stream)
                )
                return await downloader.download(
                    CONTENT_URL, CALL, quickxor_b64(BODY), listed_size=1000
                )
        finally:
            await client.aclose()

    blob = run(go())
    assert (blob.data is None, blob.path is not None) == (True, True)
    assert blob.read_bytes() == BODY
    assert blob.hashes == {
        "quickXorHash": quickxor_b64(BODY),
        "sha256": hashlib.sha256(BODY).hexdigest(),
    }
    blob.discard()
    assert list(tmp_path.iterdir()) == []
