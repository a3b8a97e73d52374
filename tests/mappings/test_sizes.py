"""Sizes in findings and reports read as people read them."""

from __future__ import annotations

import pytest

from hirondelle.mappings.sizes import readable_size


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1000, "1 kB"),
        (1234, "1.23 kB"),
        (999_499, "999 kB"),
        (999_500, "1 MB"),  # rounds up into the next unit, never "1e+03 kB"
        (52_428_800, "52.4 MB"),
        (2 * 10**9, "2 GB"),
        (3 * 10**18, "3,000 PB"),
    ],
)
def test_readable_size(size: int, shown: str) -> None:
    assert readable_size(size) == shown
