"""Sizes as people read them: decimal units, three significant figures."""

from __future__ import annotations

UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB")


def scaled(size: float) -> tuple[float, int]:
    """`size` in its decimal unit: the value and the unit's index in `UNITS` (the value
    stays under 999.5, so that three figures never round up to "1000", but past the last
    unit)."""
    value, unit = float(size), 0
    while value >= 999.5 and unit < len(UNITS) - 1:
        value /= 1000
        unit += 1
    return value, unit


def readable_size(size: int) -> str:
    """`1234567` → "1.23 MB"; below a kilobyte, "512 bytes" (SI units, as disks are sold)."""
    if size < 1000:
        return f"{size} bytes"
    value, unit = scaled(size)
    shown = f"{value:,.0f}" if value >= 999.5 else f"{value:.3g}"  # past the last unit
    return f"{shown} {UNITS[unit]}"
