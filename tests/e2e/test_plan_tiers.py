"""`plan` in two tiers, end to end over the sandbox: the inventory and `--deep`, and the
inventory from the tenant's usage reports.

The inventory reads each mail folder's own counters (mailFolder `totalItemCount`,
https://learn.microsoft.com/en-us/graph/api/resources/mailfolder) and lists calendars
with `/calendars/{id}/events`, which returns single events and series masters, never
their occurrences (https://learn.microsoft.com/en-us/graph/api/calendar-list-events);
the deep tier reads each event and its instances
(https://learn.microsoft.com/en-us/graph/api/event-list-instances). The usage reports are a
302 to a CSV, one row per mailbox or OneDrive
(https://learn.microsoft.com/en-us/graph/api/reportroot-getmailboxusagedetail,
https://learn.microsoft.com/en-us/graph/api/reportroot-getonedriveusageaccountdetail), refused
with 403 without Reports.Read.All (https://learn.microsoft.com/en-us/graph/reportroot-authorization)
and carrying hashes when the tenant conceals names
(https://learn.microsoft.com/en-us/graph/api/resources/adminreportsettings).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from hirondelle.cli import main
from hirondelle.migrator import operations
from hirondelle.migrator.config import Config
from hirondelle.migrator.errors import ConfigError
from hirondelle.migrator.plan import Plan, in_order
from hirondelle.migrator.registry import assemble
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.workloads import BY_NAME
from hirondelle.workloads.demo import SECRET_ENV, demo_config

SPEC = TenantSpec(
    seed=5, users=2, messages=12, large_messages=0, files_per_drive=3, large_file_bytes=0
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(Tenant.generate(SPEC), tls=True) as server:
        os.environ[SECRET_ENV] = server.client_secret  # the sandbox's public test secret
        yield server


def _requests(sandbox: SandboxServer) -> int:
    return int(sandbox.stats()["requests"])


def test_the_inventory_reads_no_event_and_says_where_counts_come_from(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = demo_config(sandbox, tmp_path)
    before = _requests(sandbox)
    inventory = asyncio.run(operations.plan(config, source="graph"))
    inventory_requests = _requests(sandbox) - before
    deep = asyncio.run(operations.plan(config, deep=True))
    deep_requests = _requests(sandbox) - before - inventory_requests

    assert inventory.summary()["tier"] == "inventory" and deep.summary()["tier"] == "deep"
    assert inventory_requests < deep_requests
    # the same rows in both tiers: counts do not depend on the findings' depth
    assert inventory.rows == deep.rows
    assert inventory.items == deep.items == sum(r.items for r in deep.rows) > 0
    counted = {row.workload: row.counted for row in inventory.rows}
    assert counted["mail"] == "inventory"
    assert counted["calendar"] == counted["contacts"] == counted["files"] == "listing"
    # a series is one item: the calendar rows count what the tenant holds as masters
    total_events = 0
    for user in sandbox.tenant.users:
        events = sum(
            len(sandbox.tenant.calendar_data.events(user.id, c.id))
            for c in sandbox.tenant.calendar_data.calendars(user.id)
        )
        rows = [r for r in inventory.rows if r.workload == "calendar" and r.owner == user.upn]
        assert sum(r.items for r in rows) == events
        total_events += events
    # only the deep tier reads each event (and a series' instances)
    assert deep_requests - inventory_requests >= total_events
    deep_only = {f.kind for f in deep.findings} - {f.kind for f in inventory.findings}
    assert "no-message-id" in deep_only  # drafts: found by listing every message
    assert set(inventory.findings) <= set(deep.findings)


def test_a_sample_runs_the_deep_checks_for_one_owner_in_n(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = demo_config(sandbox, tmp_path)
    deep = asyncio.run(operations.plan(config, deep=True))
    sampled = asyncio.run(operations.plan(config, sample=2, source="graph"))
    first, second = (user.upn for user in sandbox.tenant.users)

    def drafts(plan: Plan) -> set[str]:
        return {f.owner for f in plan.findings if f.kind == "no-message-id"}

    assert drafts(deep) == {first, second}
    assert drafts(sampled) == {first}  # the 1st owner of every two
    assert sampled.summary()["tier"] == "sampled"
    assert sampled.summary()["deep_one_owner_in"] == 2
    assert sampled.rows == deep.rows


def test_json_and_csv_are_streamed_with_the_collected_plans_content(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = demo_config(sandbox, tmp_path)
    (tmp_path / "hirondelle.toml").write_text(_toml(config_source(sandbox)), encoding="utf-8")
    collected = asyncio.run(operations.plan(config, source="graph")).as_dict()
    csv_path = tmp_path / "plan.csv"
    arguments = ["plan", "--json", "--csv", str(csv_path), "--source", "graph"]
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "hirondelle.toml"), *arguments])
    assert result.exit_code == 0, result.output
    streamed = json.loads(result.output)
    assert streamed == collected
    with open(csv_path, encoding="utf-8", newline="") as lines:
        rows = list(csv.DictReader(lines))
    assert [r["container"] for r in rows] == [c["container"] for c in streamed["containers"]]
    assert {r["counted"] for r in rows} == {"inventory", "listing"}


def test_a_plan_refused_before_any_owner_writes_no_json(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    (tmp_path / "users.csv").write_text("nobody@contoso.test,nobody\n", encoding="utf-8")
    tables = {**config_source(sandbox), "users": {"file": "users.csv"}}
    (tmp_path / "hirondelle.toml").write_text(_toml(tables), encoding="utf-8")
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "hirondelle.toml"), "plan", "--json"])
    assert result.exit_code == 2
    assert "nobody@contoso.test" in result.output  # the message names the row
    assert "{" not in result.output  # and no half document precedes it


def test_the_reports_give_each_users_mail_and_onedrive_as_owners_count_them(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = demo_config(sandbox, tmp_path)
    before = _requests(sandbox)
    per_owner = asyncio.run(operations.plan(config, source="graph"))
    per_owner_requests = _requests(sandbox) - before
    reported = asyncio.run(operations.plan(config, source="reports"))
    reported_requests = _requests(sandbox) - before - per_owner_requests

    for user in sandbox.tenant.users:
        for workload in ("mail", "files"):
            counted = [r for r in per_owner.rows if (r.workload, r.owner) == (workload, user.upn)]
            (row,) = [r for r in reported.rows if (r.workload, r.owner) == (workload, user.upn)]
            assert row.counted == "report"
            assert row.bytes == sum(r.bytes for r in counted) > 0
            if workload == "mail":
                assert row.items == sum(r.items for r in counted)
        files = asyncio.run(_onedrive_files(config, user.upn))
        (drive,) = [r for r in reported.rows if (r.workload, r.owner) == ("files", user.upn)]
        assert drive.items == files  # "File Count": files (notebooks too), not folders
    # calendars, contacts and inbox rules are left to the checked owners, as the summary says
    assert not {r.workload for r in reported.rows} & {"calendar", "contacts", "rules"}
    summary = reported.summary()["usage_reports"]
    assert isinstance(summary, dict)
    assert summary["not_counted"] == ["calendar", "contacts", "rules"]
    assert reported_requests < per_owner_requests / 2
    # sites are in no OneDrive report: still listed per owner
    assert any(r.owner.startswith("site:") and r.counted == "listing" for r in reported.rows)


async def _onedrive_files(config: Config, upn: str) -> int:
    async with assemble(config) as assembled:
        (source,) = [w.source for w in assembled.workloads if w.name == "files"]
        owners = [o for o in await source.owners() if o.upn == upn]
        (drive,) = await source.containers(owners[0])
        kinds = [item.meta.get("kind") for item in await source.listing(drive)]
        return sum(1 for kind in kinds if kind in ("file", "package"))  # a notebook is a file


def test_without_reports_the_plan_says_why_and_counts_per_owner(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = demo_config(sandbox, tmp_path)
    per_owner = asyncio.run(operations.plan(config, source="graph"))
    for switch, said in (({"forbidden": True}, "403"), ({"concealed": True}, "conceal")):
        sandbox.set_reports(**switch)
        try:
            notices: list[str] = []
            fallback = asyncio.run(operations.plan(config, notice=notices.append))
            with pytest.raises(ConfigError, match="usage reports unavailable"):
                asyncio.run(operations.plan(config, source="reports"))
        finally:
            sandbox.set_reports()
        assert len(notices) == 1 and "usage reports unavailable" in notices[0]
        assert said in notices[0], notices  # why, for each of the two
        assert fallback.rows == per_owner.rows


def test_plan_source_option_on_the_command_line(sandbox: SandboxServer, tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_text(_toml(config_source(sandbox)), encoding="utf-8")
    base = ["-c", str(tmp_path / "hirondelle.toml"), "plan", "--json"]
    result = CliRunner().invoke(main, [*base, "--source", "reports"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["usage_reports"]["refreshed"]
    assert {"report", "listing"} == {c["counted"] for c in document["containers"]}
    # in text, what the reports leave out is said, with how to read its findings
    text = CliRunner().invoke(main, [*base[:-1], "--source", "reports"])
    assert text.exit_code == 0, text.output
    said = " ".join(text.output.split())  # the console wraps its lines
    assert "none of their findings read: calendar, contacts, rules" in said
    assert "--sample N checks N owners in full" in said
    wrong = CliRunner().invoke(main, [*base, "--source", "nowhere"])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    assert "'nowhere' is not one of" in wrong.output


def test_owners_are_emitted_in_order_whatever_order_they_finish_in() -> None:
    async def scenario() -> list[str]:
        gates = {name: asyncio.Event() for name in "abcd"}
        emitted: list[str] = []

        async def assess(owner: str) -> str:
            await gates[owner].wait()
            return owner

        async def release() -> None:
            for name in "dcba":  # the last owner finishes first
                gates[name].set()
                await asyncio.sleep(0)  # let the workers run: no time passes

        await asyncio.gather(in_order(list("abcd"), assess, 4, emitted.append), release())
        return emitted

    assert asyncio.run(scenario()) == list("abcd")


def config_source(sandbox: SandboxServer) -> dict[str, dict[str, str]]:
    return {
        "source": {
            "tenant_id": sandbox.tenant_id,
            "client_id": sandbox.client_id,
            "client_secret_env": SECRET_ENV,
            "graph_url": sandbox.graph_url,
            "authority": sandbox.authority,
            "ca_file": str(sandbox.ca_file),
        },
        "state": {"url": "sqlite:///state/hirondelle.sqlite", "audit_dir": "audit"},
        **{
            f"targets.{name}": {"kind": "archive", "path": f"archive/{name}"}
            for name in BY_NAME  # every workload, as the demo's configuration
        },
    }


def _toml(tables: Mapping[str, Mapping[str, object]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items()) + "\n"
        for name, table in tables.items()
    )


def test_blockers_come_first_are_counted_and_make_plan_exit_1(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Files over the WebDAV target's upload limit would not be carried: blockers. `plan`
    reads no target, so the target's URL need not answer."""
    (tmp_path / "passwords").write_text("", encoding="utf-8")
    (tmp_path / "passwords").chmod(0o600)
    files = {
        "kind": "webdav",
        "url": "https://127.0.0.1:9/dav/{login}/",
        "password_file": "passwords",
        "max_upload_bytes": 10,
    }
    tables: dict[str, Mapping[str, object]] = {**config_source(sandbox), "targets.files": files}
    (tmp_path / "hirondelle.toml").write_text(_toml(tables), encoding="utf-8")
    findings_csv = tmp_path / "findings.csv"
    arguments = ["plan", "--source", "graph", "--findings-csv", str(findings_csv)]
    result = CliRunner().invoke(main, [*arguments, "-c", str(tmp_path / "hirondelle.toml")])

    assert result.exit_code == 1, result.output
    assert findings_csv.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads UTF-8
    with open(findings_csv, encoding="utf-8-sig", newline="") as lines:
        rows = list(csv.DictReader(lines))
    blockers = [r for r in rows if r["severity"] == "blocker"]
    assert blockers and {r["kind"] for r in blockers} == {"oversize"}
    shown = result.output
    # the findings, blockers first, then the totals counting them, then what to do
    headings = [line.split(":")[0] for line in shown.splitlines() if line[:1].isupper()]
    severities = [h.split()[0] for h in headings if h.split()[0] in ("BLOCKER", "WARNING", "INFO")]
    assert severities == sorted(severities, key=["BLOCKER", "WARNING", "INFO"].index)
    assert severities[0] == "BLOCKER"
    assert f"findings: {len(blockers)} blocker" in shown
    assert shown.rstrip().endswith("exit code 1")
    # one table per workload, each with a total per owner that has several folders
    titles = [line.strip() for line in shown.splitlines()]
    for workload in ("mail", "files"):
        assert titles.count(workload) == 1  # one table, titled with the workload alone
    assert "(all folders)" in shown
