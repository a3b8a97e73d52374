"""QuickXorHash, the content hash OneDrive and SharePoint publish for every file.

Each byte at position i is XORed into a 160-bit register at bit offset
(11 * i) mod 160, wrapping around; the total length is then XORed into the last
eight bytes of the little-endian result, which is base64-encoded. Because the
offset only depends on i mod 160, a block is reduced column by column (numpy, 8
columns at a time) and the 160 column values are placed at the end: hashing runs at memory speed,
which matters for multi-GB files hashed while they stream.
Algorithm: https://learn.microsoft.com/en-us/onedrive/developer/code-snippets/quickxorhash
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

WIDTH_BITS = 160
SHIFT = 11
_MASK = (1 << WIDTH_BITS) - 1


class QuickXorHash:
    """Incremental QuickXorHash: `update` with chunks of any size, then `b64digest`."""

    def __init__(self) -> None:
        self._columns = np.zeros(WIDTH_BITS, dtype=np.uint8)
        self._length = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        raw = np.frombuffer(data, dtype=np.uint8)
        size = raw.size
        phase = self._length % WIDTH_BITS
        head = min(-phase % WIDTH_BITS, size)  # bytes that complete the current row
        self._columns[phase : phase + head] ^= raw[:head]
        rows = (size - head) // WIDTH_BITS
        if rows:
            # whole rows, reduced 8 columns at a time (XOR is bytewise: a uint64 view of
            # the row is the same sum), without copying the data into a padded array
            body = raw[head : head + rows * WIDTH_BITS].view(np.uint64).reshape(rows, -1)
            self._columns.view(np.uint64)[:] ^= np.bitwise_xor.reduce(body, axis=0)
        tail = size - head - rows * WIDTH_BITS
        self._columns[:tail] ^= raw[size - tail :]
        self._length += size

    def digest(self) -> bytes:
        register = 0
        for column, value in enumerate(self._columns.tolist()):
            if value:
                offset = (column * SHIFT) % WIDTH_BITS
                rotated = (value << offset) | (value >> (WIDTH_BITS - offset))
                register ^= rotated & _MASK
        result = bytearray(register.to_bytes(WIDTH_BITS // 8, "little"))
        for index, byte in enumerate(self._length.to_bytes(8, "little")):
            result[WIDTH_BITS // 8 - 8 + index] ^= byte
        return bytes(result)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def quickxor_b64(data: bytes) -> str:
    """The base64 QuickXorHash of `data`, as Graph's `file.hashes.quickXorHash`."""
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.b64digest()


def same_quickxor(first: str, second: str) -> bool:
    """Whether two base64 QuickXorHashes name one digest (False when either is malformed)."""
    try:
        return base64.b64decode(first, validate=True) == base64.b64decode(second, validate=True)
    except (binascii.Error, ValueError):
        return False
