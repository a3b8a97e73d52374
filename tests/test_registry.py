"""Every declared workload and target kind is whole: its code imports, its settings are a
dataclass, the README has its row, its section and every one of its settings, and the
conformance suites run it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hirondelle.cli import main
from hirondelle.migrator.templates import CONFIG_TEMPLATE
from hirondelle.tests.conformance.targets import CONTRACT_TARGETS
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


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_init_writes_every_workload_table_with_its_kinds(workload: WorkloadSpec) -> None:
    tables = [target.template for target in workload.targets if target.template]
    assert f"[targets.{workload.name}]" in "".join(tables)
    for kind in workload.kinds:
        assert f'"{kind}"' in "".join(tables), kind


def test_init_writes_the_configuration_and_the_secret_files(tmp_path: Path) -> None:
    folder = tmp_path / "migration"
    first = CliRunner().invoke(main, ["init", str(folder), "--matrix-server-name", "chat.test"])
    assert first.exit_code == 0, first.output
    names = ["hirondelle.toml", "users.csv", "matrix-appservice.yaml", "matrix-as-token"]
    assert first.output.splitlines() == [f"wrote {folder / name}" for name in names]
    toml = (folder / "hirondelle.toml").read_text(encoding="utf-8")
    assert toml == CONFIG_TEMPLATE.replace("{server_name}", "chat.test")
    token = (folder / "matrix-as-token").read_text(encoding="utf-8").strip()
    assert f'as_token: "{token}"' in (folder / "matrix-appservice.yaml").read_text()
    for secret in names[2:]:
        assert (folder / secret).stat().st_mode & 0o777 == 0o600, secret
    again = CliRunner().invoke(main, ["init", str(folder)])
    assert again.exit_code == 2
    assert f"{folder / 'hirondelle.toml'}: already exists (use --force" in again.output


def test_a_usage_report_a_workload_names_is_one_the_reports_hold() -> None:
    from hirondelle.connectors.graph.reports import UsageReports

    reports = UsageReports()
    for spec in WORKLOADS:
        if spec.usage_report:
            assert reports.table(spec.usage_report) == {}, spec.name
            assert spec.report_row, f"{spec.name} is counted by a report but names no row"
        assert not (spec.usage_report and spec.left_to_checks), spec.name
