"""No product module over 500 lines: a module that long holds more than one thing.

Product modules are every Python file outside tests/ and bench/. The limit follows the
house style (modules of 100 to 500 lines); split a module that outgrows it into modules
named for what they hold.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500
NOT_PRODUCT = {"tests", "bench"}


def product_modules() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if (parts := path.relative_to(ROOT).parts)[0] not in NOT_PRODUCT
        and not any(part.startswith(".") for part in parts)
    )


def line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def test_product_modules_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in product_modules()}
    assert {"cli.py", "sandbox/server.py", "migrator/engine.py"} <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_no_product_module_over_500_lines() -> None:
    oversized = {
        path.relative_to(ROOT).as_posix(): count
        for path in product_modules()
        if (count := line_count(path)) > MAX_LINES
    }
    listing = "\n".join(
        f"  {name}: {count} lines"
        for name, count in sorted(oversized.items(), key=lambda item: -item[1])
    )
    assert not oversized, f"product modules over {MAX_LINES} lines (split them):\n{listing}"
