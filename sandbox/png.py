"""Small PNG files for the sandbox's seeded pictures (contact photos, inline chat images).

The container only: a signature, IHDR for 8-bit truecolour, one IDAT, IEND
(https://www.w3.org/TR/png-3/#5DataRep); the callers derive the pixels from a seed.
"""

from __future__ import annotations

import struct
import zlib


def png(width: int, height: int, rows: bytes, level: int = -1) -> bytes:
    """A truecolour PNG of `rows` (each a filter byte, then `width` RGB pixels), compressed
    at zlib `level` (-1: zlib's default)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, level))
        + chunk(b"IEND", b"")
    )
