"""What a process imports at start: only what its command and workloads need, and the
local workers' forkserver imports what a worker then uses."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from hirondelle.migrator import local_workers, zygote
from hirondelle.migrator.config import load_config
from hirondelle.migrator.local_workers import PRELOAD
from hirondelle.migrator.registry import WORKLOAD_MODULES, workload_modules
from hirondelle.tests.config_text import MINIMAL_CONFIG

PACKAGE = "hirondelle"
# Imported by workloads other than mail, or by a schema upgrade only.
NOT_FOR_MAIL = (
    "alembic",
    "numpy",
    "icalendar",
    f"{PACKAGE}.connectors.matrix",
    f"{PACKAGE}.connectors.webdav",
    f"{PACKAGE}.connectors.graph.drives",
    f"{PACKAGE}.connectors.graph.teams",
    f"{PACKAGE}.connectors.graph.calendar",
)


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    return set(out.stdout.decode().split())


def test_the_command_line_imports_no_workload_and_no_alembic() -> None:
    # the command line, and the operations a command imports when it runs
    loaded = imported_after(f"import {PACKAGE}.cli, {PACKAGE}.migrator.operations")
    assert f"{PACKAGE}.migrator.registry" in loaded
    assert loaded.isdisjoint(NOT_FOR_MAIL), sorted(loaded.intersection(NOT_FOR_MAIL))


@pytest.mark.parametrize("workload", sorted(WORKLOAD_MODULES))
def test_every_module_a_forkserver_preloads_exists(workload: str) -> None:
    for module in (*PRELOAD, *(f"{PACKAGE}.{m}" for m in WORKLOAD_MODULES[workload])):
        importlib.import_module(module)


def test_a_mail_run_preloads_the_mail_modules_only(tmp_path: Path) -> None:
    config_file = tmp_path / "hirondelle.toml"
    config_file.write_text(MINIMAL_CONFIG, encoding="utf-8")
    modules = workload_modules(load_config(config_file))
    assert f"{PACKAGE}.connectors.graph.mail" in modules
    assert f"{PACKAGE}.connectors.imap" in modules
    assert not any(name in modules for name in NOT_FOR_MAIL)


def test_a_worker_opens_the_state_with_the_driver_its_forkserver_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "hirondelle.toml"
    config_file.write_text(MINIMAL_CONFIG, encoding="utf-8")
    config = load_config(config_file)
    asked: list[tuple[list[str], bool]] = []

    def forked(preload: list[str], wanted: bool) -> contextlib.nullcontext[None]:
        asked.append((list(preload), wanted))
        return contextlib.nullcontext()

    monkeypatch.setattr(zygote, "forked", forked)
    local_workers.forked_server(config, 2)
    [(preload, wanted)] = asked
    assert wanted is True
    # what a worker imports to open the state, once its forkserver imported `preload`
    opened = imported_after(
        f"import importlib, sys\nfor name in {preload!r}: importlib.import_module(name)\n"
        "before = set(sys.modules)\nfrom hirondelle.state.store import open_store\n"
        f"open_store({config.state_url!r}).engine.dispose()\n"
        "for name in before: del sys.modules[name]"
    )
    assert not {name for name in opened if name.startswith(("sqlalchemy", "sqlite3"))}
