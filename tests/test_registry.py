"""Every declared workload and target kind is whole: its code imports, its settings are a
dataclass, the README has its row, its section and every one of its settings, and the
conformance suites run it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hirondelle.tests.conformance.conftest import CONTRACT_TARGETS
from hirondelle.workloads import WORKLOADS, TargetSpec, WorkloadSpec, load

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
TARGETS = [(workload, target) for workload in WORKLOADS for target in workload.targets]
IDS = [f"{workload.name}-{target.kind}" for workload, target in TARGETS]


def rows_of(workload: str) -> list[str]:
    """The README table rows that name `targets.<workload>`."""
    return [
        line
        for line in README.splitlines()
        if line.startswith("|") and f"targets.{workload}" in line
    ]


def documented(setting: str, rows: list[str]) -> bool:
    """A row names the setting in backquotes, alone or as `targets.<workload>.<setting>`."""
    for row in rows:
        for quoted in re.findall(r"`([^`]+)`", row):
            if quoted == setting or quoted.endswith(f".{setting}"):
                return True
    return False


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_a_workload_builder_imports_and_is_preloaded(workload: WorkloadSpec) -> None:
    assert callable(load(workload.builder))
    assert workload.builder.partition(":")[0] in workload.modules
    assert len(set(workload.kinds)) == len(workload.kinds), workload.kinds


@pytest.mark.parametrize(("workload", "target"), TARGETS, ids=IDS)
def test_a_target_kind_has_a_factory_and_settings(
    workload: WorkloadSpec, target: TargetSpec
) -> None:
    assert isinstance(load(target.target), type), target.target
    assert dataclasses.is_dataclass(load(target.settings)), target.settings


@pytest.mark.parametrize(("workload", "target"), TARGETS, ids=IDS)
def test_every_setting_of_a_target_kind_is_documented(
    workload: WorkloadSpec, target: TargetSpec
) -> None:
    rows = rows_of(workload.name)
    kind_rows = [row for row in rows if f"targets.{workload.name}.kind" in row.split("|")[1]]
    assert documented(target.kind, kind_rows), f"no README row says {target.kind!r} for it"
    assert re.search(rf"^#+ {re.escape(target.docs)}$", README, re.M), target.docs
    settings = load(target.settings)
    missing = [
        field.name
        for field in dataclasses.fields(settings)
        if field.name != "config_key" and not documented(field.name, rows)
    ]
    assert not missing, f"targets.{workload.name} settings missing from the README: {missing}"


def test_the_documentation_check_sees_a_missing_setting() -> None:
    assert documented("password_file", rows_of("mail"))
    assert not documented("no_such_setting", rows_of("mail"))
    assert not documented("uploads", rows_of("mail"))  # a files setting, not a mail one


def test_every_target_kind_runs_the_contract_suite() -> None:
    declared = {(workload.name, target.kind) for workload, target in TARGETS}
    assert declared <= CONTRACT_TARGETS, sorted(declared - CONTRACT_TARGETS)
