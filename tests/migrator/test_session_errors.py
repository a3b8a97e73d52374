"""What a target session raises reaches the engine sorted: a local disk that refuses a
write is one fatal line, never a traceback."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.mappings.mail import map_message
from hirondelle.migrator.errors import FatalError
from hirondelle.migrator.model import Container, Owner
from hirondelle.migrator.session import OwnerSession
from hirondelle.migrator.workload import Workload

OWNER = Owner("alice@contoso.test", "u1", "Alice")


def test_an_archive_path_that_cannot_be_created_is_one_fatal_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("where the archive's folder should be", encoding="utf-8")
    source: Any = None  # never asked: only the target is used
    workload = Workload("mail", source, map_message, ArchiveTarget(tmp_path / "a-file" / "x"))
    inbox = Container("mail", OWNER.upn, "f1", ("Inbox",), "inbox")

    async def call() -> str:
        with ThreadPoolExecutor(2) as pool:
            session = OwnerSession(workload, OWNER, pool)
            return await session.call(lambda s: s.ensure_container(inbox))

    with pytest.raises(FatalError, match="the mail target cannot write: Not a directory"):
        asyncio.run(call())
