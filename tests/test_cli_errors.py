"""Every mistake an operator can make with a file or a flag: one line and an exit code."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from hirondelle.cli import main

CONFIG = """
[source]
tenant_id = "t"
client_id = "c"
client_secret_env = "HIRONDELLE_TEST_NEVER_SET"

[targets.mail]
kind = "archive"
path = "archive"
"""


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
    (tmp_path / "hirondelle.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "hirondelle.sqlite").write_bytes(b"not a database, " * 512)
    result = invoke("-c", str(tmp_path / "hirondelle.toml"), "status")
    assert result.exit_code == 3
    assert "the state database cannot be read" in one_line(result)


def test_a_mistyped_users_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(
        CONFIG.replace("[targets.mail]", '[users]\nfile = "users.csv"\n\n[targets.mail]'),
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
    (tmp_path / "hirondelle.toml").write_text(CONFIG, encoding="utf-8")
    unwritable = tmp_path / "no-such-folder" / "plan.csv"
    result = invoke("-c", str(tmp_path / "hirondelle.toml"), "plan", "--csv", str(unwritable))
    assert result.exit_code == 2
    assert "--csv: cannot write" in one_line(result)
