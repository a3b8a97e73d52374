"""What holds names or secrets is this user's only: the state, the audit logs; secret
files others can read are refused (or warned about, when the configuration says so)."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hirondelle.connectors.credentials import read_password_file
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.errors import ConfigError
from hirondelle.migrator.secret_files import set_policy
from hirondelle.state.store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def policy() -> Iterator[None]:
    yield
    set_policy("refuse")


def test_state_and_audit_log_are_private(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state/hirondelle.sqlite")
    store.start_run("run", {})
    store.engine.dispose()
    assert mode(tmp_path / "state") == 0o700
    for name in ("hirondelle.sqlite", "hirondelle.sqlite-wal"):
        path = tmp_path / "state" / name
        if path.exists():
            assert mode(path) == 0o600, name
    audit = AuditLog(tmp_path / "audit", 1)
    audit.record("put", "done", owner="alice@contoso.test")
    audit.close()
    assert mode(tmp_path / "audit") == 0o700
    assert mode(tmp_path / "audit" / "run-000001.jsonl") == 0o600


def test_a_secret_file_others_can_read_is_refused(
    tmp_path: Path, policy: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "passwords"
    path.write_text("alice:s3cr3t\n", encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"targets.mail.password_file: .* chmod 600") as caught:
        read_password_file(path, "targets.mail.password_file")
    assert "s3cr3t" not in str(caught.value)  # never the content
    set_policy("warn")
    with caplog.at_level(logging.WARNING):
        assert read_password_file(path, "targets.mail.password_file") == {"alice": "s3cr3t"}
    assert "can be read by other users" in caplog.text
    set_policy("refuse")
    path.chmod(0o600)
    assert read_password_file(path, "targets.mail.password_file") == {"alice": "s3cr3t"}


def test_an_unreadable_audit_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("a file where the folder should be")
    with pytest.raises(ConfigError, match="state.audit_dir: cannot write"):
        AuditLog(tmp_path / "audit", 1)
