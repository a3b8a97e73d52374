"""Bad configuration gives one clear error naming the setting; good configuration parses."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from hirondelle.migrator.config import load_config, parse_config
from hirondelle.migrator.errors import ConfigError
from hirondelle.tests.config_text import MINIMAL_CONFIG


def good() -> dict[str, Any]:
    return {
        "source": {"tenant_id": "t", "client_id": "c", "client_secret_env": "SECRET"},
        "targets": {"mail": {"kind": "archive", "path": "out"}},
    }


def test_minimal_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    config = parse_config(good(), tmp_path)
    assert config.state_url == f"sqlite:///{tmp_path}/state/hirondelle.sqlite"
    assert config.targets["mail"].options["path"] == tmp_path / "out"
    assert config.deletions == "mirror"
    assert config.budget.requests_per_window == 10_000
    assert (config.chat_reread_pages, config.chat_reply_window_threads) == (20, 200)


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (lambda c: c["source"].pop("tenant_id"), "source.tenant_id"),
        (lambda c: c["source"].update(client_secret="x"), "source.client_secret"),
        (lambda c: c["source"].update(client_secret_file="f"), "source"),
        (lambda c: c["source"].update(graph_url="http://graph.example"), "source.graph_url"),
        (lambda c: c["source"].update(concurrency=0), "source.concurrency"),
        (lambda c: c["targets"]["mail"].update(kind="ftp"), "targets.mail.kind"),
        (lambda c: c["targets"].update(fax={"kind": "x"}), "targets.fax"),
        (lambda c: c.update(run={"deletions": "purge"}), "run.deletions"),
        (lambda c: c.update(run={"owner_concurrency": "8"}), "run.owner_concurrency"),
        (lambda c: c.update(run={"chat_reread_pages": -1}), "run.chat_reread_pages"),
        (lambda c: c.update(run={"chat_reply_window_days": -2.0}), "run.chat_reply_window_days"),
        (lambda c: c.update(state={"colour": "blue"}), "state.colour"),
        (lambda c: c.pop("targets"), "targets"),
        (lambda c: c.update(state={"lock_file": "x.lock"}), "state.lock_file"),
        (lambda c: c.update(run={"workers": 0}), "run.workers"),
        (lambda c: c.update(run={"lease_seconds": 1}), "run.lease_seconds"),
        (lambda c: c.update(run={"lease_seconds": float("nan")}), "run.lease_seconds"),
        (lambda c: c.update(run={"lease_seconds": float("inf")}), "run.lease_seconds"),
        (lambda c: c.update(cluster={"broker_url": "redis://h/0"}), "state.url"),  # SQLite
        (lambda c: c.update(cluster={}), "cluster.broker_url"),
        (lambda c: c.update(cluster={"broker_url": "http://h/"}), "cluster.broker_url"),
        (lambda c: c.update(cluster={"broker_url": "redis://:pw@h/0"}), "cluster.broker_url"),
        (
            lambda c: c.update(cluster={"broker_url": "redis://h/0?password=pw"}),
            "cluster.broker_url",
        ),
    ],
)
def test_bad_setting_is_named(tmp_path: Path, change: Any, setting: str) -> None:
    config = good()
    change(config)
    with pytest.raises(ConfigError) as caught:
        parse_config(config, tmp_path)
    assert caught.value.setting == setting
    assert "\n" not in str(caught.value)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_users_csv(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text(
        "source_upn,target_login\n# a comment\nAlice@Contoso.test,alice@example.org\n"
    )
    config = parse_config({**good(), "users": {"file": "users.csv"}}, tmp_path)
    assert config.users == {"alice@contoso.test": "alice@example.org"}
    (tmp_path / "users.csv").write_text("source_upn,target_login\nnot-an-upn\n")
    with pytest.raises(ConfigError, match="line 2"):
        parse_config({**good(), "users": {"file": "users.csv"}}, tmp_path)
    (tmp_path / "users.csv").write_text("source_upn,target_login\n")
    with pytest.raises(ConfigError, match="no users"):
        parse_config({**good(), "users": {"file": "users.csv"}}, tmp_path)


def test_an_unknown_target_setting_is_named(tmp_path: Path) -> None:
    from hirondelle.migrator.registry import build_target

    config = good()
    config["targets"]["calendar"] = {
        "kind": "caldav",
        "url": "https://dav.example.org/",
        "pasword_file": "typo.txt",
    }
    parsed = parse_config(config, tmp_path)
    with pytest.raises(ConfigError) as caught:
        build_target(parsed.targets["calendar"])
    assert caught.value.setting == "targets.calendar.pasword_file"


def test_a_contacts_archive_takes_no_vcard_version(tmp_path: Path) -> None:
    # It writes vCard 4.0; the version is a CardDAV setting (README).
    from hirondelle.migrator.registry import build_target

    config = good()
    config["targets"]["contacts"] = {"kind": "archive", "path": "out", "vcard_version": "3.0"}
    parsed = parse_config(config, tmp_path)
    with pytest.raises(ConfigError, match="takes one setting: path") as caught:
        build_target(parsed.targets["contacts"])
    assert caught.value.setting == "targets.contacts.vcard_version"  # the key to remove


@pytest.mark.parametrize(
    ("workload", "table", "named"),
    [
        ("rules", {"kind": "managesieve", "password_file": "p.txt"}, "targets.rules.host"),
        ("chats", {"kind": "matrix", "as_token_file": "t"}, "targets.chats.homeserver"),
        ("mail", {"kind": "imap", "password_file": "p.txt"}, "targets.mail.host"),
    ],
)
def test_a_missing_required_setting_is_named(
    tmp_path: Path, workload: str, table: dict[str, str], named: str
) -> None:
    # not Python's "__init__() missing 1 required positional argument"
    from hirondelle.migrator.registry import settings_of
    from hirondelle.workloads import load, target_spec

    spec = target_spec(workload, table["kind"])
    assert spec is not None
    options = {k: v for k, v in table.items() if k != "kind"}
    with pytest.raises(ConfigError, match="is required") as caught:
        settings_of(load(spec.settings), options, f"targets.{workload}")
    assert caught.value.setting == named
    assert "positional argument" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:hunter2@127.0.0.1:1/db",
        "postgresql+psycopg://u@127.0.0.1:1/db?password=hunter2",
    ],
)
def test_a_password_in_the_state_url_is_refused_unprinted(url: str) -> None:
    from hirondelle.state.store import open_store

    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert caught.value.setting == "state.url"
    assert "hunter2" not in str(caught.value)


def test_an_earlier_versions_lock_keeps_this_version_off_the_state(tmp_path: Path) -> None:
    """A run of a version before the state lock moved into the database holds
    state/hirondelle.lock: this version refuses to touch (and upgrade) the state."""
    import asyncio
    import fcntl
    import os

    from hirondelle.migrator import operations
    from hirondelle.migrator.errors import LockedError

    config = parse_config(good(), tmp_path)
    lock = tmp_path / "state" / "hirondelle.lock"
    lock.parent.mkdir()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(LockedError, match="earlier version"):
            asyncio.run(operations.migrate(config, "run"))
        assert not (tmp_path / "state" / "hirondelle.sqlite").exists()
    finally:
        os.close(fd)


def test_calendar_window_takes_toml_dates_and_iso_strings(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(
        MINIMAL_CONFIG + "[run]\ncalendar_window_start = 2021-01-01\n"
        'calendar_window_end = "2027-06-30T12:00:00Z"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "hirondelle.toml")
    assert config.calendar_window_start == date(2021, 1, 1)
    assert config.calendar_window_end == "2027-06-30T12:00:00Z"


@pytest.mark.parametrize(
    ("run", "setting"),
    [
        ({"calendar_window_start": "January 2021"}, "run.calendar_window_start"),
        ({"calendar_window_start": time(12, 0)}, "run.calendar_window_start"),
        ({"calendar_window_end": 2027}, "run.calendar_window_end"),
        (
            {"calendar_window_start": date(2027, 1, 1), "calendar_window_end": date(2021, 1, 1)},
            "run.calendar_window_end",
        ),
    ],
)
def test_a_bad_calendar_window_is_refused_when_the_file_is_read(
    run: dict[str, Any], setting: str, tmp_path: Path
) -> None:
    config = good()
    config["run"] = run
    with pytest.raises(ConfigError) as refused:
        parse_config(config, tmp_path)
    assert refused.value.setting.startswith(setting)
