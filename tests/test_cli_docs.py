"""The README and `--help` stay honest: every command and option is documented."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from hirondelle.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(commands(command, f"{prefix}{name} "))
        else:
            found.append((f"{prefix}{name}", command))
    return found


def test_expected_commands_exist() -> None:
    names = {name for name, _ in commands(main)}
    assert names >= {
        "init",
        "doctor",
        "plan",
        "run",
        "sync",
        "verify",
        "status",
        "retry-failed",
        "demo",
        "sandbox serve",
    }


def test_every_command_has_help_and_is_in_the_readme() -> None:
    runner = CliRunner()
    for name, command in commands(main):
        result = runner.invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        assert command.help, f"{name} has no help text"
        assert f"`{name}" in README, f"{name} is not in the README's command table"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                longest = max(param.opts, key=len)
                assert longest in README, f"{name} {longest} is not documented in the README"


def test_missing_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "none.toml"), "status"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "hirondelle init" in result.output


def test_help_lists_commands_in_workflow_order_with_examples_and_exit_codes() -> None:
    shown = CliRunner().invoke(main, ["--help"]).output
    block = shown.split("Commands:\n")[1].split("\n\n")[0]
    listed = [line.split()[0] for line in block.splitlines()]
    workflow = ["init", "doctor", "plan", "run", "sync", "verify", "status", "retry-failed"]
    assert listed[: len(workflow)] == workflow, listed
    assert "Examples:" in shown and "Exit codes:" in shown
    codes = [line.split()[0] for line in shown.split("Exit codes:\n")[1].splitlines()]
    assert codes == ["0", "1", "2", "3", "4", "130", "143"]


def test_the_sandbox_control_api_documents_every_field() -> None:
    from dataclasses import fields

    from hirondelle.sandbox.faults import Faults
    from hirondelle.sandbox.tenant import Mutation
    from hirondelle.sandbox.throttle import Limits

    section = README.split("## The sandbox's control API")[1].split("\n## ")[0]
    for kind in (Mutation, Faults, Limits):
        for field in fields(kind):
            assert f"`{field.name}`" in section, f"{kind.__name__}.{field.name} is not documented"
