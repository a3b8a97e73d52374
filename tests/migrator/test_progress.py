"""What the progress display says: items as items, bytes as bytes, totals honest."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from hirondelle.migrator.progress import ProgressReporter


def test_lines_count_items_and_bytes_and_mark_growing_totals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    quiet = Console(file=io.StringIO(), force_terminal=False)  # not a terminal: lines
    with ProgressReporter(console=quiet, interval=3600) as reporter:
        reporter.begin("run 7")
        reporter.owners("mail", waiting=3, running=2)
        reporter.add_total("mail", 120)
        reporter.advance("mail", 40, 2_500_000)
        reporter.begin("sync 8: resuming (run 7 was interrupted): 40 items already done")
        reporter.owners("mail", waiting=0, running=1)
        reporter.add_total("mail", 5)
        reporter.advance("mail", 5, 1_200)
        reporter.owners("mail", waiting=0, running=0)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "run 7",
        # the pass before ends with its own line, its total marked as still growing
        "mail: 40/120+ items, 2.5 MB written, 2 owners moving, 3 waiting",
        "sync 8: resuming (run 7 was interrupted): 40 items already done",
        "mail: 5/5 items, 1.2 kB written, owners done",
    ]


def test_the_live_display_estimates_time_only_once_every_owner_started() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120)
    with ProgressReporter(console=screen) as reporter:
        reporter.owners("files", waiting=2, running=1)
        reporter.add_total("files", 10)
        reporter.advance("files", 4, 4_000_000)
        task = reporter._progress.tasks[0]
        assert task.total is None and task.fields["items"] == "4/10+ items"
        reporter.owners("files", waiting=0, running=1)
        task = reporter._progress.tasks[0]
        assert task.total == 10 and task.fields["settled"]
        assert task.fields["size"] == "4 MB written"


class Recorded:
    """A `Reporter` that keeps what it was told."""

    def __init__(self) -> None:
        self.items = self.bytes = 0

    def add_total(self, workload: str, items: int) -> None:
        return None

    def advance(self, workload: str, items: int, size: int) -> None:
        self.items += items
        self.bytes += size


def test_a_large_items_bytes_show_as_they_arrive_and_count_once() -> None:
    import asyncio

    from hirondelle.migrator.audit import AuditLog
    from hirondelle.migrator.feed import CHUNK_BYTES, ContentFeed
    from hirondelle.migrator.ledger import Ledger
    from hirondelle.migrator.model import Container, Item

    reporter = Recorded()
    ledger = Ledger(["files"], AuditLog(None, 0), reporter)
    drive = Container("files", "alice@example.test", "drive-1", ("OneDrive",))
    big = Item("file-1", "v1", {"path": "/Vidéos/film.mkv"})

    async def download() -> None:
        feed = ContentFeed(asyncio.get_running_loop(), 3 * CHUNK_BYTES, chunks=8)
        feed.on_bytes = lambda size: ledger.streaming(drive, big, size)
        for _ in range(3):
            await feed.push(b"x" * CHUNK_BYTES)
            assert reporter.items == 0  # bytes move before the item is written

    asyncio.run(download())
    assert reporter.bytes == 3 * CHUNK_BYTES
    ledger.item("put", "done", drive, big, size=3 * CHUNK_BYTES)
    assert (reporter.items, reporter.bytes) == (1, 3 * CHUNK_BYTES)  # not counted twice
    assert ledger.tallies["files"].bytes == 3 * CHUNK_BYTES
