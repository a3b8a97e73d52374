"""`hirondelle demo`: the whole job on the built-in sandbox, with no network and no setup.

It starts the Graph sandbox in-process (HTTPS with a throwaway CA, so the real
azure-identity and msgraph-sdk code paths run), plans, copies every mailbox into
the `archive` target under the chosen folder, changes the tenant (new mail, flag
changes, moves, deletions), syncs, verifies, writes the plan and the run report as HTML
pages (`plan.html`, `report.html`) and returns a summary per workload.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..migrator.config import Config, parse_config
from ..migrator.operations import check, migrate, plan
from ..migrator.workload import RunReporter
from ..sandbox.server import SandboxServer
from ..sandbox.tenant import Mutation, Tenant, TenantSpec
from . import BY_NAME, WORKLOADS

SECRET_ENV = "HIRONDELLE_DEMO_CLIENT_SECRET"
DEMO_WINDOW = 8 * 3600.0  # the waves of the demo's plan page: a working day
OWNED = ("state", "archive", "audit")  # what a previous demo left in the folder
PAGES = ("plan.html", "report.html")  # and the pages it wrote


def demo_config(
    sandbox: SandboxServer, directory: Path, workloads: Sequence[str] | None = None
) -> Config:
    """The demo's configuration: every workload (or those named) into its archive."""
    names = set(workloads or BY_NAME)
    raw: dict[str, Any] = {
        "source": {
            "tenant_id": sandbox.tenant_id,
            "client_id": sandbox.client_id,
            "client_secret_env": SECRET_ENV,
            "graph_url": sandbox.graph_url,
            "authority": sandbox.authority,
            "ca_file": str(sandbox.ca_file),
        },
        "state": {"url": "sqlite:///state/hirondelle.sqlite", "audit_dir": "audit"},
        "targets": {
            w.name: {"kind": "archive", "path": w.demo_path} for w in WORKLOADS if w.name in names
        },
    }
    return parse_config(raw, directory.resolve())


def run_demo(
    directory: Path,
    *,
    users: int = 3,
    messages: int = 60,
    seed: int = 7,
    reporter: RunReporter | None = None,
    say: Callable[[str], None] | None = None,
    workloads: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the demo into `directory` (its earlier demo output is replaced); every workload,
    or only those named (tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in PAGES:
        (directory / name).unlink(missing_ok=True)
    spec = TenantSpec(
        seed=seed,
        users=users,
        messages=messages,
        large_messages=1,
        large_attachment_bytes=4 * 1024 * 1024,
        files_per_drive=12,
        large_file_bytes=64 * 1024 * 1024,
    )
    with SandboxServer(Tenant.generate(spec), tls=True) as sandbox:
        os.environ[SECRET_ENV] = sandbox.client_secret  # the sandbox's public test secret
        config = demo_config(sandbox, directory, workloads)
        return asyncio.run(_demo(sandbox, config, seed, reporter, say or (lambda _: None)))


async def _demo(
    sandbox: SandboxServer,
    config: Config,
    seed: int,
    reporter: RunReporter | None,
    say: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    from ..report.page import default_language
    from ..report.pages import write_plan_page, write_run_report
    from ..report.plan_digest import PlanDigest

    language = default_language()
    digest = PlanDigest()
    planned = await plan(config, sink=digest)
    say(
        f"plan: {planned.owners} owners (mailboxes, sites), {planned.items} items, "
        f"{planned.bytes / 1e6:.1f} MB, {planned.finding_count} findings"
    )
    write_plan_page(
        config.base_dir / PAGES[0], planned, digest, config, DEMO_WINDOW, language, "--dir"
    )
    first = await migrate(config, "run", reporter)
    changes: dict[str, Any] = {
        k: n for w in WORKLOADS if w.name in config.targets for k, n in w.demo_changes.items()
    }
    changed = sandbox.mutate(Mutation(seed=seed + 1, **changes))
    say(
        f"tenant changed: {len(changed.new)} new, {len(changed.changed)} changed, "
        f"{len(changed.moved)} moved, {len(changed.deleted)} deleted messages; "
        f"{len(changed.events)} events, {len(changed.contacts)} contacts and "
        f"{len(changed.files)} drive items, {len(changed.messages)} Teams channel messages and "
        f"{len(changed.chat_messages)} chat messages touched; "
        f"inbox rules or automatic replies of {len(changed.rules)} users changed"
    )
    second = await migrate(config, "sync", reporter)
    reports = await check(config)
    summary: dict[str, dict[str, Any]] = {}
    for name, report in reports.items():
        a, b = first.tallies[name], second.tallies[name]
        for difference in report.differences:
            say(
                f"  {name} {difference.kind}: {difference.container} "
                f"{difference.source_id or difference.ref}: {difference.detail}"
            )
        summary[name] = {
            "copied": a.copied + b.copied,
            "updated": b.updated,
            "moved": b.moved,
            "removed": b.removed,
            "skipped": a.skipped + b.skipped,
            "failed": a.failed + b.failed + len(a.failed_units) + len(b.failed_units),
            "verified": report.verified,
            "differences": len(report.differences),
        }
    write_run_report(config.base_dir / PAGES[1], config, language, "--dir")
    return summary


def summary_lines(summary: dict[str, dict[str, Any]], directory: Path) -> list[str]:
    """The demo's outcome as lines to read, one per workload, then where the files are."""
    lines = []
    for name, tally in summary.items():
        verdict = "verified" if tally["verified"] else f"{tally['differences']} differences"
        counts = ", ".join(
            f"{tally[key]} {key}"
            for key in ("copied", "updated", "moved", "removed", "skipped", "failed")
        )
        lines.append(f"{name}: {counts}; {verdict}")
    lines.append(f"archive written under {directory / 'archive'}")
    lines.append(f"plan and report pages: {directory / PAGES[0]}, {directory / PAGES[1]}")
    lines.append(
        "each folder in it is a BagIt bag: check one with "
        f"bagit.py --validate {directory / BY_NAME['mail'].demo_path}"
    )
    return lines
