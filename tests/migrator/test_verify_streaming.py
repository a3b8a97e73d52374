"""`verify` through a real state and archive, with sorting spilled to disk: every kind of
difference is still found when nothing is held whole."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from hirondelle.bench.verify import FOLDER, OWNER, BenchSource, build, message, source_id
from hirondelle.connectors.archive import ArchiveTarget, message_base
from hirondelle.migrator import sorted_runs
from hirondelle.migrator.model import Item, Payload
from hirondelle.migrator.sorted_runs import SortedRuns
from hirondelle.migrator.verify import verify
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.schema import FAILED, SKIPPED, STARTED, ItemRow
from hirondelle.state.store import open_store

ROWS = 40


def _file(root: Path, number: int) -> Path:
    session = ArchiveTarget(root / "archive", durable=False).open(OWNER)
    return session.folder_dir(session.ensure_container(FOLDER)) / "cur" / _name(number)


def _name(number: int) -> str:
    return f"{message_base(source_id(number))}:2,S"


def test_every_kind_of_difference_is_found_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sorted_runs, "RUN_SIZE", 3)  # the target listing spills runs
    build(tmp_path, ROWS)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    _file(tmp_path, 0).unlink()  # gone from the target
    _file(tmp_path, 1).write_bytes(message(1) + b"more")  # another size
    _file(tmp_path, 2).write_bytes(message(2).replace(b"<2@", b"<X@"))  # same size
    cur = _file(tmp_path, 0).parent
    (cur / "f00d:2,S").write_bytes(message(8))  # a second copy of message 8
    (cur / "beef:2,S").write_bytes(b"Message-ID: <stray@x>\r\n\r\n")  # nobody's
    status = {3: FAILED, 4: SKIPPED, 5: STARTED}
    with store.engine.begin() as connection:
        for number, value in status.items():
            connection.execute(
                update(ItemRow).where(ItemRow.source_id == source_id(number)).values(status=value)
            )
        connection.execute(delete(ItemRow).where(ItemRow.source_id == source_id(6)))
    listed = [n for n in range(ROWS) if n != 7]  # 7 was removed at the source
    workload = Workload(
        "mail", BenchSource(listed, page=4), _map, ArchiveTarget(tmp_path / "archive")
    )

    report = asyncio.run(verify(store, [workload], RunOptions()))["mail"]

    (check,) = report.containers
    found = sorted(
        (d.kind, int(d.source_id[-12:]) if d.source_id else -1, d.detail.split(":")[0])
        for d in report.differences
    )
    assert found == [
        ("differs", 1, "size 52 != 48"),
        ("differs", 2, "fingerprint differs"),
        ("duplicate", -1, "second copy of mid"),
        # the stray file, message 6's file (its row is gone) and the files of 3, 4 and 5,
        # whose rows are not done (as before the streaming code: no row claims them)
        *[("extra", -1, "on the target only")] * 5,
        ("extra", 7, "removed at source since the last sync"),
        ("missing", 0, "no longer on the target"),
        ("missing", 3, "failed"),
        ("missing", 5, "not copied yet (started)"),
        ("missing", 6, "never copied (run sync)"),
    ]
    assert [int(s[-12:]) for s, _ in check.skipped] == [4]
    assert check.failed == 1
    assert (check.source_count, check.target_count) == (ROWS - 1, ROWS + 1)


def test_sorted_runs_spill_to_disk_and_merge_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sorted_runs, "RUN_SIZE", 4)
    numbers = [(n * 7919) % 101 for n in range(101)]
    with SortedRuns(numbers, key=lambda n: n) as runs:
        assert runs._runs  # spilled
        assert list(runs) == list(runs) == sorted(numbers)
        folder = Path(runs._runs[0]).parent
    assert not folder.exists()
    with SortedRuns(numbers[:3], key=lambda n: -n) as small:
        assert not small._runs and list(small) == sorted(numbers[:3], reverse=True)


def _map(item: Item, content: Any) -> Payload:
    raise AssertionError("verify maps nothing")
