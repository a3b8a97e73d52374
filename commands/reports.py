"""The commands that read what the runs did: `verify` compares both sides, `status`
reads the state, `report` writes the client's page."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from .common import (
    EXIT_PARTIAL,
    config_of,
    config_option,
    default_language,
    json_option,
    lang_option,
    out,
    reported,
)


@click.command()
@config_option
@json_option
@click.pass_context
@reported
def verify(ctx: click.Context, as_json: bool) -> None:
    """Compare source and target per folder and list every difference."""
    from ..migrator import operations

    reports = asyncio.run(operations.check(config_of(ctx)))
    if as_json:
        click.echo(json.dumps({k: r.as_dict() for k, r in reports.items()}, ensure_ascii=False))
    else:
        for report in reports.values():
            _print_verify(report)
    if not all(r.verified for r in reports.values()):
        sys.exit(EXIT_PARTIAL)


def _print_verify(report: Any) -> None:
    for check in report.containers:
        mark = "=" if not check.differences else "≠"
        out().print(
            f"{mark} {check.owner} {check.container}: source {check.source_count}, "
            f"target {check.target_count}, skipped {len(check.skipped)}",
            markup=False,
        )
        for diff in check.differences:
            out().print(
                f"    {diff.kind}: {diff.source_id or diff.ref}: {diff.detail}", markup=False
            )
        for _, note in check.notes:
            out().print(f"    note: {note}", markup=False)
    verdict = "verified" if report.verified else f"{len(report.differences)} difference(s)"
    counts = [f"{report.failed} failed"] if report.failed else []
    counts += [f"{report.skipped} skipped as announced"] if report.skipped else []
    counts += [f"{report.notes} noted above"] if report.notes else []
    out().print(f"{report.workload}: {verdict}" + (f" ({', '.join(counts)})" if counts else ""))


@click.command()
@config_option
@json_option
@click.option("--owners", "all_owners", is_flag=True, help="List every owner of the latest run.")
@click.pass_context
@reported
def status(ctx: click.Context, as_json: bool, all_owners: bool) -> None:
    """What the state says: items per workload, the latest run's owners (running ones,
    failed ones) and workers, and the last runs."""
    from ..migrator import operations
    from ..migrator.status import status_lines

    data = operations.status(config_of(ctx))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for line in status_lines(data, all_owners):
        click.echo(line)


@click.command()
@config_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the report as one self-contained HTML page to this file.",
)
@lang_option
@click.pass_context
@reported
def report(ctx: click.Context, html_path: Path, lang: str | None) -> None:
    """The client's report of the runs, syncs and checks so far, from the state database and
    the audit logs: per owner and workload, failures, verify differences, throughput, skipped
    items."""
    from ..report.page import check_writable
    from ..report.pages import write_run_report

    check_writable(html_path, "--html")
    write_run_report(html_path, config_of(ctx), lang or default_language())
    click.echo(f"wrote {html_path}")
