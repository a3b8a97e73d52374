"""The bytes of the sandbox's drive files: generated on demand, readable at any offset.

File content derives from (seed, item id, content number, size) alone, so a multi-GB
file costs nothing until it is read, and the same seed always serves the same bytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .drive_data import DriveItem

BLOCK = 160 * 6554  # content block (~1 MiB): a multiple of QuickXorHash's 160-byte width
_BLOCK_CACHE = 16


_MAGIC = {
    ".pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".mp4": b"\x00\x00\x00\x20ftypisom",
    ".docx": b"PK\x03\x04\x14\x00\x06\x00",
    ".xlsx": b"PK\x03\x04\x14\x00\x06\x00",
    ".pptx": b"PK\x03\x04\x14\x00\x06\x00",
}


class ContentSource:
    """Bytes of any length from (seed, item id, content number), readable at any offset.

    Block k is one pseudo-random base block with k written over its first 8 bytes, so
    blocks never repeat; block 0 starts with the file type's magic bytes.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._blocks: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def chunks(
        self, name: str, item: str, content: int, size: int, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """The bytes [start, end) of the content, a block at most per chunk."""
        end = size if end is None else min(end, size)
        base = self._base(item, content, size) if end > start else None
        position = start
        while position < end and base is not None:
            index, offset = divmod(position, BLOCK)
            block = base.copy()
            if index:
                block[:8] ^= np.frombuffer(index.to_bytes(8, "little"), np.uint8)
            else:
                magic = _MAGIC.get(name[name.rfind(".") :].lower(), b"")[: block.size]
                block[: len(magic)] = np.frombuffer(magic, np.uint8)
            piece = block[offset : min(block.size, offset + end - position)]
            yield piece.tobytes()
            position += piece.size

    def _base(self, item: str, content: int, size: int) -> np.ndarray:
        key = (item, content)
        with self._lock:
            if key in self._blocks:
                self._blocks.move_to_end(key)
                return self._blocks[key]
        digest = hashlib.sha256(f"{self._seed}|content|{item}|{content}".encode()).digest()
        generator = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
        base = np.frombuffer(generator.bytes(min(size, BLOCK)), np.uint8)
        with self._lock:
            self._blocks[key] = base
            while len(self._blocks) > _BLOCK_CACHE:
                self._blocks.popitem(last=False)
        return base


def property_block(seed: int, item: DriveItem, serial: int) -> bytes:
    """The document properties SharePoint writes into an enriched file (its Document ID
    and item GUID), different for every item, content and `serial`."""
    digest = hashlib.sha256(f"{seed}|enrich|{item.id}|{item.content}|{serial}".encode())
    doc_id = f"HIRO-{int.from_bytes(digest.digest()[:4], 'big') % 10**8:08d}"
    return (
        f'<property name="_dlc_DocId"><vt:lpwstr>{doc_id}</vt:lpwstr></property>'
        f'<property name="_dlc_DocIdItemGuid"><vt:lpwstr>{{{item.guid}}}</vt:lpwstr></property>'
    ).encode()
