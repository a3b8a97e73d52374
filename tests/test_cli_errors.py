"""Every mistake an operator can make with a file or a flag: one line and an exit code."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hirondelle.cli import main
from hirondelle.tests.config_text import MINIMAL_CONFIG


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1, result.output
    return result.output


def test_a_folder_given_as_the_configuration(tmp_path: Path) -> None:
    result = invoke("-c", str(tmp_path), "status")
    assert result.exit_code == 2 and "cannot read" in one_line(result)


def test_a_state_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "hirondelle.sqlite").write_bytes(b"not a database, " * 512)
    result = invoke("-c", str(tmp_path / "hirondelle.toml"), "status")
    assert result.exit_code == 3
    assert "the state database cannot be read" in one_line(result)


def test_a_mistyped_users_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(
        MINIMAL_CONFIG.replace("[targets.mail]", '[users]\nfile = "users.csv"\n\n[targets.mail]'),
        encoding="utf-8",
    )
    (tmp_path / "users.csv").write_text(
        "alice@contoso.test,alice\nbob@contoso.test,ALICE\n", encoding="utf-8"
    )
    result = invoke("-c", str(tmp_path / "hirondelle.toml"), "status")
    assert result.exit_code == 2
    assert "users.csv line 2: target login ALICE is already the target of line 1" in (
        one_line(result).replace("\n", "")
    )


def test_a_plan_csv_that_cannot_be_written_is_refused_before_the_scan(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    unwritable = tmp_path / "no-such-folder" / "plan.csv"
    result = invoke("-c", str(tmp_path / "hirondelle.toml"), "plan", "--csv", str(unwritable))
    assert result.exit_code == 2
    assert "--csv: cannot write" in one_line(result)


def test_the_configuration_may_follow_the_command(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    missing = tmp_path / "missing.toml"
    after = invoke("status", "-c", str(missing))
    assert after.exit_code == 2 and "missing.toml" in one_line(after)
    # given on both sides, the one after the command wins
    both = invoke("-c", str(missing), "status", "--config", str(tmp_path / "hirondelle.toml"))
    assert both.exit_code == 0, both.output
    assert "missing.toml" not in both.output


def test_sigterm_stops_with_one_line_and_exit_143(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from hirondelle.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "demo", "--dir", str(tmp_path / "demo"), "--messages", "400"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "demo" / "state").exists():  # inside the work, not at start-up
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "stopped by SIGTERM: run the same command again to resume"
    )


def test_an_unexpected_error_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hirondelle.migrator import operations

    def broken(config: object) -> None:
        raise KeyError("items")

    (tmp_path / "hirondelle.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    monkeypatch.setattr(operations, "status", broken)
    result = invoke("-c", str(tmp_path / "hirondelle.toml"), "status")
    assert result.exit_code == 3
    assert "internal error: KeyError: 'items'" in one_line(result)


def test_one_file_for_both_plan_csvs_is_refused_before_the_scan(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(MINIMAL_CONFIG, encoding="utf-8")
    same = str(tmp_path / "plan.csv")
    result = invoke(
        "-c", str(tmp_path / "hirondelle.toml"), "plan", "--csv", same, "--findings-csv", same
    )
    assert result.exit_code == 2 and "also the --csv file" in one_line(result)
