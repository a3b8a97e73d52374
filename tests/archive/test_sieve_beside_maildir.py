"""The rules archive shares the mail archive's root: each user's `.sieve` lands beside
that user's Maildir, in the same bag."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.connectors.archive_sieve import SieveArchiveTarget
from hirondelle.migrator.model import Container, Owner, Payload
from hirondelle.tests.conformance.items import INBOX, message


def test_the_script_lands_beside_the_maildir(tmp_path: Path) -> None:
    owner = Owner(upn="alice@example.test", source_id="a", target_login="alice")
    mail = ArchiveTarget(tmp_path, durable=False).open(owner)
    mail.put(mail.ensure_container(INBOX), message())
    rules = SieveArchiveTarget(tmp_path, durable=False).open(owner)
    folder = rules.ensure_container(Container("rules", owner.upn, "rules", ("Sieve",)))
    content = b'require "fileinto";\r\nfileinto "Junk";\r\n'
    rules.put(folder, Payload("rules", content, hashlib.sha256(content).hexdigest()))
    user = tmp_path / "data" / "alice"
    assert sorted(path.name for path in user.iterdir()) == ["Maildir", "outlook-rules.sieve"]
    assert (user / "outlook-rules.sieve").read_bytes() == content
