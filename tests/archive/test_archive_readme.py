"""Every archive root explains itself in a README.txt that matches what the code does."""

from __future__ import annotations

from pathlib import Path

import pytest

from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.connectors.archive_bag import unseal
from hirondelle.connectors.archive_chat import ChatArchiveTarget
from hirondelle.connectors.archive_dav import IcsArchiveTarget, VcfArchiveTarget
from hirondelle.connectors.archive_files import FilesArchiveTarget
from hirondelle.connectors.archive_readme import README, README_NAME
from hirondelle.mappings import mail_folders
from hirondelle.migrator.model import Owner

OWNER = Owner(upn="team:Équipe", source_id="u-1", target_login="alice", display_name="Équipe")


@pytest.mark.parametrize(
    "kind",
    [ArchiveTarget, IcsArchiveTarget, VcfArchiveTarget, FilesArchiveTarget, ChatArchiveTarget],
)
def test_each_archive_root_gets_the_readme(kind: type, tmp_path: Path) -> None:
    target = kind(tmp_path / "root", durable=False)
    target.open(OWNER).close()
    assert (tmp_path / "root" / README_NAME).read_text(encoding="utf-8") == README
    assert not list((tmp_path / "root").glob(".*.tmp"))


def test_the_readme_names_every_character_the_mail_names_change() -> None:
    changed = {
        "/": mail_folders.delimiter_lookalike("/"),  # the archive's delimiter
        **mail_folders._CHAR_REPLACEMENTS,
        "~": mail_folders._LEADING_TILDE,
    }
    for original, look_alike in changed.items():
        code = f"U+{ord(look_alike):04X}"
        assert f'"{original}"' in README and look_alike in README and code in README, original
    assert mail_folders.UNNAMED in README


def test_a_stale_readme_is_replaced_by_the_next_pass_that_writes(tmp_path: Path) -> None:
    """Not by a read-only command's open: the sealed tag manifest lists the README."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / README_NAME).write_text("old text", encoding="utf-8")
    ArchiveTarget(tmp_path / "root", durable=False).open(OWNER).close()
    assert (tmp_path / "root" / README_NAME).read_text(encoding="utf-8") == "old text"
    unseal(tmp_path / "root")
    assert (tmp_path / "root" / README_NAME).read_text(encoding="utf-8") == README
