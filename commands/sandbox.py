"""The commands on the built-in Graph sandbox: `demo` runs the whole job on it,
`sandbox serve` serves it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..migrator.errors import ConfigError
from .common import EXIT_PARTIAL, json_option, out, reported


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("hirondelle-demo"),
    show_default=True,
    help="Where the archive, state, audit log and the plan.html and report.html pages are written.",
)
@click.option("--users", default=3, show_default=True, help="Users in the sandbox tenant.")
@click.option("--messages", default=60, show_default=True, help="Messages per user.")
@click.option("--seed", default=7, show_default=True, help="Seed of the sandbox tenant.")
@json_option
@reported
def demo(directory: Path, users: int, messages: int, seed: int, as_json: bool) -> None:
    """Plan, run, mutate, sync and verify from the built-in sandbox into local files."""
    from ..migrator.progress import ProgressReporter
    from ..workloads.demo import run_demo, summary_lines

    with ProgressReporter() as reporter:
        summary = run_demo(
            directory,
            users=users,
            messages=messages,
            seed=seed,
            reporter=reporter,
            say=None if as_json else out().print,
        )
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:  # after the bars have stopped, so that nothing draws over it
        for line in summary_lines(summary, directory):
            out().print(line, markup=False, highlight=False, soft_wrap=True)
    if not all(w["verified"] and not w["failed"] for w in summary.values()):
        sys.exit(EXIT_PARTIAL)


@click.group()
def sandbox() -> None:
    """The local Microsoft Graph emulator with a seeded tenant."""


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, help="Port to listen on (0: any).")
@click.option("--seed", default=7, show_default=True)
@click.option("--users", default=3, show_default=True)
@click.option("--messages", default=200, show_default=True, help="Messages per user.")
@click.option("--large", default=2, show_default=True, help="Messages with a 40 MB attachment.")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Load the tenant from a folder of .eml files / .mbox per user instead.",
)
@click.option(
    "--tls/--no-tls",
    default=True,
    show_default=True,
    help="Serve HTTPS with a throwaway CA (azure-identity needs it).",
)
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    help="Shrink Graph's 10-minute throttling window (and its count) by this factor.",
)
@click.option("--no-throttle", is_flag=True, help="Do not enforce Graph's mailbox limits.")
@click.option(
    "--reports-forbidden",
    is_flag=True,
    help="Refuse the usage reports with 403, as to an app without Reports.Read.All.",
)
@click.option(
    "--conceal-names", is_flag=True, help="Conceal user names in the usage reports (hashes)."
)
@reported
def serve(
    host: str,
    port: int,
    seed: int,
    users: int,
    messages: int,
    large: int,
    from_dir: Path | None,
    tls: bool,
    scale: float,
    no_throttle: bool,
    reports_forbidden: bool,
    conceal_names: bool,
) -> None:
    """Serve the sandbox tenant over HTTP(S) until interrupted."""
    from ..sandbox.server import Limits, serve_forever
    from ..sandbox.tenant import Tenant, TenantSpec

    try:
        tenant = (
            Tenant.load(from_dir)
            if from_dir is not None
            else Tenant.generate(
                TenantSpec(seed=seed, users=users, messages=messages, large_messages=large),
                lazy=True,  # each user's content when first asked for: starts at once
            )
        )
    except ValueError as exc:
        raise ConfigError("--from", str(exc)) from None
    limits = Limits(scale=scale, enabled=not no_throttle)
    serve_forever(
        tenant,
        host=host,
        port=port,
        tls=tls,
        limits=limits,
        reports_forbidden=reports_forbidden,
        conceal_names=conceal_names,
    )
