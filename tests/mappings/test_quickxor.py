"""QuickXorHash against an independent implementation's published test vectors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mappings.quickxor import QuickXorHash, quickxor_b64

# (input base64, expected hash) from rclone's OneDrive backend test suite.
VECTORS = [
    ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
    ("tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
    ("jRRDVA==", "jaDAEKgAAAAAAAAABAAAAAAAAAA="),
    ("J9iPGCbfZSTNyw==", "J8DGIzBggm+UgQTNUgYAAAAAAAA="),
    ("2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="),
    ("T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="),
    (
        "jyibxJSzO6ZiZ0O1qe3tG/bvIAYssvukh9suIT5wEy1JBINVgPiqdsTW0cOpP0aUfP7mgqLfADkz"
        "I/m/GgCuVhr8oFLrOCoTx1/psBOWwhltCbhUx51Icm9aH8tY4Z3ccU+6BKpYQkLCy0B/A9Zc",
        "hZfLIilSITC6N3e3tQ/iSgEzkto=",
    ),
    (
        "qwGf2ESubE5jOUHHyc94ORczFYYbc2OmEzo+hBIyzJiNwAzC8PvJqtTzwkWkSslgHFGWQZR2BV5+"
        "uYTrYT7HVwRM40vqfj0dBgeDENyTenIOL1LHkjtDKoXEnQ0mXAHoJ8PjbNC93zi5TovVRXTNzfGE"
        "s5dpWVqxUzb5lc7dwkyvOluBw482mQ4xrzYyIY1t+//OrNi1ObGXuUw2jBQOFfJVj2Y6BOyYmfB1"
        "y36eBxi3zxeG5d5NYjm2GSh6e08QMAwu3zrINcqIzLOuNIiGXBtl7DjKt7b5wqi4oFiRpZsCyx2s"
        "mhSrdrtK/CkdU6nDN+34vSR/M8rZpWQdBE7a8g==",
        "WYT9JY3JIo/pEBp+tIM6Gt2nyTM=",
    ),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_published_vectors(data: str, expected: str) -> None:
    assert quickxor_b64(base64.b64decode(data)) == expected


@pytest.mark.parametrize("block", [1, 7, 64, 159, 160, 161, 1000])
def test_any_chunking_gives_the_same_hash(block: int) -> None:
    data = base64.b64decode(VECTORS[-1][0]) * 7
    hasher = QuickXorHash()
    for start in range(0, len(data), block):
        hasher.update(data[start : start + block])
    assert hasher.b64digest() == quickxor_b64(data)


def reference(data: bytes) -> str:
    """The algorithm byte by byte, as the documentation states it."""
    register = 0
    for index, byte in enumerate(data):
        offset = (index * 11) % 160
        register ^= ((byte << offset) | (byte >> (160 - offset))) & ((1 << 160) - 1)
    out = bytearray(register.to_bytes(20, "little"))
    for i, b in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= b
    return base64.b64encode(bytes(out)).decode()


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=500))
def test_matches_the_byte_by_byte_definition(data: bytes, block: int) -> None:
    hasher = QuickXorHash()
    for start in range(0, len(data), block):
        hasher.update(data[start : start + block])
    assert hasher.b64digest() == reference(data)
