"""ManageSieve settings refused before any connection, with the setting to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from hirondelle.connectors.managesieve import ManageSieveSettings
from hirondelle.migrator.errors import ConfigError


def settings(tmp_path: Path, name: str) -> ManageSieveSettings:
    passwords = tmp_path / "passwords"
    passwords.write_text("a@example.test:secret\n", encoding="utf-8")
    passwords.chmod(0o600)
    return ManageSieveSettings(
        host="127.0.0.1", security="plain", password_file=passwords, script_name=name
    )


def test_a_script_name_is_measured_in_bytes(tmp_path: Path) -> None:
    """Dovecot keeps the name as a file name: 100 "é" are 200 bytes, 101 are too many,
    though far under 255 characters (the server would answer TRYLATER forever)."""
    assert settings(tmp_path, "é" * 100).script_name == "é" * 100
    with pytest.raises(ConfigError, match="targets.rules.script_name.*202 bytes"):
        settings(tmp_path, "é" * 101)
    with pytest.raises(ConfigError, match="targets.rules.script_name"):
        settings(tmp_path, "a/b")
