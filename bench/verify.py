"""`verify` at scale: time and peak memory for a mail folder of 100,000 and 1,000,000 items.

    python -m hirondelle.bench.verify --quick   # 100,000 rows
    python -m hirondelle.bench.verify           # 100,000 then 1,000,000 rows

For each size a process of its own builds, untimed, in a temporary folder: a SQLite
state through the project's schema (one unit, every row `done`, inserted in bulk) and
the matching archive target (one Maildir file per row). The source is an in-process
stand-in that lists the same ids a page of 1,000 at a time, as Graph would. Then `verify`
runs as a measured child process (imports included): wall time, its own peak RSS and CPU
(`wait4`), and the CPU the machine spent on anything else meanwhile (`other_cpu_s`). The
child checks the report: every row listed, no difference. The last line is one JSON
object: `rows`, `seconds`, `peak_rss_mb` of the largest size, then `steps` with the
figures of every size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from ..connectors.archive import ArchiveTarget, message_base
from ..mappings.mail import fingerprint_of
from ..migrator.model import Container, Item, Owner, Page
from ..migrator.verify import verify
from ..migrator.workload import RunOptions, Workload
from ..state.schema import DONE, ItemRow
from ..state.store import open_store
from ._servers import machine_busy_seconds, run_measured

OWNER = Owner("bench@contoso.test", "bench-owner")
FOLDER = Container("mail", OWNER.upn, "bench-inbox", ("Inbox",), "inbox")
PAGE = 1000
# Graph message ids are about 150 characters of base64: memory is measured with as much.
ID_PREFIX = "AAMkAGI2TG93AAA=" * 8 + "BGAAAAAAAC"


def source_id(number: int) -> str:
    return f"{ID_PREFIX}{number:012d}"


def message(number: int) -> bytes:
    return f"Message-ID: <{number}@bench.test>\r\nSubject: {number}\r\n\r\nbody\r\n".encode()


class BenchSource:
    """The messages numbered `numbers`, listed a page at a time (only what `verify` reads)."""

    def __init__(self, numbers: Sequence[int], page: int = PAGE) -> None:
        self.numbers, self.page = numbers, page

    async def owners(self) -> list[Owner]:
        return [OWNER]

    async def containers(self, owner: Owner) -> list[Container]:
        return [FOLDER]

    async def listing_pages(self, container: Container) -> AsyncIterator[list[Item]]:
        for start in range(0, len(self.numbers), self.page):
            yield [Item(source_id(n), "v1") for n in self.numbers[start : start + self.page]]

    async def listing(self, container: Container) -> list[Item]:
        return [item async for page in self.listing_pages(container) for item in page]

    def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        raise NotImplementedError("verify only lists")

    async def fetch(self, container: Container, item: Item) -> bytes:
        raise NotImplementedError("verify only lists")

    async def aclose(self) -> None:
        return None


def build(folder: Path, rows: int) -> None:
    """The state and the archive of `rows` messages, all written and all matching: the
    state in `folder`/state.db, the archive in `folder`/archive."""
    store = open_store(f"sqlite:///{folder / 'state.db'}")
    session = ArchiveTarget(folder / "archive", durable=False).open(OWNER)
    target_folder = session.ensure_container(FOLDER)
    unit = store.unit_for(FOLDER)
    store.set_unit(unit.id, target_folder=target_folder, status=DONE, delta_link="bench")
    cur = session.folder_dir(target_folder) / "cur"
    with store.engine.begin() as connection:
        for start in range(0, rows, 10_000):
            batch = list(_rows(unit.id, target_folder, cur, start, min(start + 10_000, rows)))
            connection.execute(insert(ItemRow), batch)
    store.engine.dispose()
    session.close()  # the folder's mbox, as a run leaves it (else verify's close writes it)


def _rows(unit_id: int, folder: str, cur: Path, start: int, end: int) -> Iterator[dict[str, Any]]:
    for number in range(start, end):
        sid, content = source_id(number), message(number)
        base = message_base(sid)
        (cur / f"{base}:2,S").write_bytes(content)
        yield {
            "unit_id": unit_id,
            "workload": "mail",
            "owner": OWNER.upn,
            "source_id": sid,
            "version": "v1",
            "meta": {},
            "status": DONE,
            "attempts": 1,
            "target_folder": folder,
            "target_ref": base,
            "fingerprint": fingerprint_of(content),
            "size": len(content),
        }


def measure_child(folder: Path, rows: int) -> None:
    """In the measured child: run `verify` and check that it found everything equal."""
    store = open_store(f"sqlite:///{folder / 'state.db'}")
    workload = Workload(
        "mail", BenchSource(range(rows)), _no_mapper, ArchiveTarget(folder / "archive")
    )
    reports = asyncio.run(verify(store, [workload], RunOptions(owner_concurrency=1)))
    report = reports["mail"]
    (check,) = report.containers
    if check.source_count != rows or check.target_count != rows or not report.verified:
        raise SystemExit(f"verify did not find {rows} equal items: {report.as_dict()}")
    print(json.dumps({"source_count": check.source_count, "target_count": check.target_count}))


def _no_mapper(item: Item, content: Any) -> Any:
    raise NotImplementedError("verify maps nothing")


def step(rows: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hirondelle-bench-verify-") as name:
        print(f"building {rows:,} rows and files...", file=sys.stderr, flush=True)
        # Built by a process of its own, so the measuring process stays small (its RSS no
        # longer floors the child's peak: `run_measured` starts it through the launcher).
        command = [sys.executable, "-m", "hirondelle.bench.verify", "--rows", str(rows)]
        subprocess.run([*command, "--build", name], check=True)
        argv = [*command, "--child", name]
        busy = machine_busy_seconds()
        finished = run_measured(argv, stdout=None, stderr=None, timeout=timeout)
        other = machine_busy_seconds() - busy - finished.cpu_seconds
        if finished.returncode != 0:
            raise SystemExit(f"verify of {rows} rows failed ({finished.returncode})")
        figures = {
            "rows": rows,
            "seconds": round(finished.seconds, 2),
            "peak_rss_mb": round(finished.peak_rss_mb, 1),
            "cpu_s": round(finished.cpu_seconds, 2),
            "other_cpu_s": round(max(other, 0.0), 2),
            "us_per_row": round(finished.seconds / rows * 1e6, 1),
        }
        # printed before the folder goes: removing a million files takes minutes
        print(json.dumps(figures), file=sys.stderr, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    parser.add_argument("--rows", type=int, help="one size only")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--build", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(Path(args.build), args.rows)
        return
    if args.child:
        measure_child(Path(args.child), args.rows)
        return
    sizes = [args.rows] if args.rows else [100_000] if args.quick else [100_000, 1_000_000]
    steps = [step(rows, args.timeout) for rows in sizes]
    print(
        json.dumps(
            {**{k: steps[-1][k] for k in ("rows", "seconds", "peak_rss_mb")}, "steps": steps}
        )
    )


if __name__ == "__main__":
    main()
