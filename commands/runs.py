"""The commands that move: `run`, `sync` and `retry-failed` in this process, its local
workers or a cluster, and `worker`, a cluster's node."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from ..migrator.errors import ConfigError
from .common import EXIT_PARTIAL, SHOWN, config_of, config_option, json_option, out, reported

workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes on this machine (default: run.workers, else the core count).",
)
detach_option = click.option(
    "--detach",
    is_flag=True,
    help="With a [cluster]: queue the owners and return at once (follow with `status`).",
)


def _migrate(
    ctx: click.Context, mode: str, as_json: bool, workers: int | None, detach: bool
) -> None:
    from ..migrator import local_workers, operations
    from ..migrator.progress import ProgressReporter

    config = config_of(ctx)
    # before the progress display or the run start a thread
    with local_workers.forked_server(config, workers), ProgressReporter() as reporter:
        result = asyncio.run(
            operations.migrate(config, mode, reporter, workers=workers, detach=detach)
        )
    if result.detached:
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        else:
            out().print(
                f"run {result.run_id}: {result.jobs} owners queued on the cluster; "
                "follow it with `hirondelle status`"
            )
        return
    _print_result(result.as_dict(), as_json)
    if not result.ok:
        sys.exit(EXIT_PARTIAL)


def _print_result(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for name, tally in data["workloads"].items():
        out().print(
            f"{name}: {tally['copied']} copied, {tally['updated']} updated, "
            f"{tally['moved']} moved, {tally['removed']} removed, {tally['skipped']} skipped, "
            f"{tally['failed']} failed, {tally['bytes'] / 1e6:.1f} MB"
        )
        _print_capped("owner failed", tally.get("failed_owners", []))
        _print_capped("not finished", tally["failed_units"])
        _print_capped("not all read again", tally.get("unchecked", []))
    for name, left in (data.get("still_failed") or {}).items():
        _print_still_failed(name, left)
    if data.get("audit_log"):
        out().print(f"audit log: {data['audit_log']}", markup=False, soft_wrap=True)
        out().print(f"log file: {data['log_file']}", markup=False, soft_wrap=True)


def _print_capped(label: str, lines: list[str]) -> None:
    """The first `SHOWN` lines of a list, then how many more the audit log holds."""
    for line in lines[:SHOWN]:
        out().print(f"  {label}: {line}", markup=False)
    if len(lines) > SHOWN:
        out().print(
            f"  ... and {len(lines) - SHOWN} more (the audit log has them all)", markup=False
        )


def _print_still_failed(workload: str, left: dict[str, Any]) -> None:
    """What this pass and earlier ones left unwritten, and what to do about it."""
    parts = []
    if left["failed_items"]:
        parts.append(f"{left['failed_items']} items failed ({len(left['owners'])} owners)")
    if left["unsettled_items"]:
        parts.append(f"{left['unsettled_items']} items interrupted mid-write")
    if left["failed_folders"]:
        parts.append(f"{len(left['failed_folders'])} folders not finished")
    out().print(
        f"{workload}: still missing on the target: {', '.join(parts)}; the audit log and "
        "`hirondelle status --owners` name them; `hirondelle retry-failed` (or the next run "
        "or sync) writes them again",
        markup=False,
    )


def _pass_command(mode: str, help_text: str) -> click.Command:
    """`run`, `sync` and `retry-failed`: one pass over the owners, with the same options."""

    @config_option
    @json_option
    @workers_option
    @detach_option
    @click.pass_context
    @reported
    def command(ctx: click.Context, as_json: bool, workers: int | None, detach: bool) -> None:
        _migrate(ctx, mode, as_json, workers, detach)

    return click.command(mode, help=help_text)(command)


run = _pass_command(
    "run", "Copy everything not yet copied; resumes where an interrupted run stopped."
)
sync = _pass_command("sync", "Carry new items, changes, moves and deletions since the last pass.")
retry_failed = _pass_command(
    "retry-failed", "Try again every item marked failed (an earlier copy is looked for first)."
)


@click.command()
@config_option
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    help="Worker processes (Celery nodes) on this machine (default: the core count).",
)
@click.option(
    "--name",
    help="Node name NAME@HOST (default hirondelle@<host name>); with several processes, "
    "NAME-1, NAME-2... Owners held by a node of this machine are taken over as soon as "
    "its process is gone; a node named for another HOST waits for its leases to expire.",
)
@click.option(
    "--owners",
    type=click.IntRange(min=1),
    help="Owners each process moves at once (default: run.owner_concurrency).",
)
@click.pass_context
@reported
def worker(ctx: click.Context, processes: int | None, name: str | None, owners: int | None) -> None:
    """Serve the cluster's owner jobs from its broker until stopped (SIGTERM or Ctrl-C give
    the running owners back to the queue). Needs [cluster] and pip install
    'hirondelle[cluster]'."""
    from ..migrator.coordinator import default_workers
    from ..migrator.worker_nodes import serve

    config = config_of(ctx)
    if config.cluster is None:
        raise ConfigError("cluster", "hirondelle worker needs a [cluster] table with broker_url")
    serve(
        config,
        Path(ctx.obj["config"]),
        processes or default_workers(),
        name,
        owners or config.owner_concurrency,
        ctx.obj["verbose"],
    )
