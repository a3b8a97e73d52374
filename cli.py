"""The `hirondelle` command line: a thin skin over `migrator.operations`.

Exit codes: see `EXIT_CODES` (printed by `hirondelle --help`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from sqlalchemy.exc import DatabaseError, OperationalError

from .migrator import operations
from .migrator.config import Config, load_config
from .migrator.errors import ConfigError, HirondelleError, LockedError
from .migrator.operations import PlanSource
from .migrator.plan import Plan, PlanSink
from .migrator.plan_output import (
    CSV_ENCODING,
    Collected,
    CsvFindingsWriter,
    CsvPlanWriter,
    JsonPlanWriter,
    Sinks,
)
from .migrator.plan_text import print_plan
from .migrator.progress import ProgressReporter

F = TypeVar("F", bound=Callable[..., Any])
EXIT_PARTIAL, EXIT_CONFIG, EXIT_FATAL, EXIT_LOCKED = 1, 2, 3, 4
SHOWN = 20  # lines of a list printed before "... and N more"
out = Console()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command stands so that it stops as Ctrl-C stops it."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def reported(fn: F) -> F:
    """Turn the tool's own errors into one line and an exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return fn(*args, **kwargs)
        except Terminated:
            _fail("stopped by SIGTERM: run the same command again to resume", 143)
        except ConfigError as exc:
            _fail(f"configuration error: {exc}", EXIT_CONFIG)
        except LockedError as exc:
            _fail(str(exc), EXIT_LOCKED)
        except HirondelleError as exc:
            _fail(f"error: {exc}", EXIT_FATAL)
        except OperationalError as exc:  # the state database went away mid-command
            detail = " ".join(str(exc.orig or exc).split())
            _fail(
                f"error: the state database stopped answering ({detail}); run the same "
                "command again once it is back: it resumes",
                EXIT_FATAL,
            )
        except DatabaseError as exc:  # not a database, or a damaged one
            detail = " ".join(str(exc.orig or exc).split())
            _fail(
                f"error: the state database cannot be read ({detail}): restore it from a "
                "backup, or move it away and run again: a new state looks up what the "
                "targets already hold before writing, so nothing is written twice",
                EXIT_FATAL,
            )
        except KeyboardInterrupt:
            _fail("interrupted: run the same command again to resume", 130)
        except Exception as exc:  # a bug: one line here, the traceback in the log (-vv shows it)
            logging.getLogger("hirondelle").debug("unexpected error", exc_info=True)
            _fail(
                f"internal error: {type(exc).__name__}: {exc}; nothing is lost (the state "
                "holds what was written): run it again as `hirondelle -vv ...` to see where "
                "it happened, and report it",
                EXIT_FATAL,
            )
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _config(ctx: click.Context) -> Config:
    return load_config(Path(ctx.obj["config"]))


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
lang_option = click.option(
    "--lang",
    type=click.Choice(["fr", "en"]),
    help="Language of the HTML page (default: the locale's, LC_ALL, LC_MESSAGES or LANG: "
    "French when it is French, English otherwise).",
)


def default_language() -> str:
    from .report.page import default_language as from_locale

    return from_locale()


# Commands as an integrator meets them, for `--help`; any other command comes after.
WORKFLOW = (
    "init", "doctor", "plan", "run", "sync", "verify", "status", "retry-failed", "report",
    "worker", "demo", "sandbox",
)  # fmt: skip
EXIT_CODES = """\b
Exit codes:
  0    done: everything selected is on the target (plan: no blocker found)
  1    done, but some items failed, `verify` found differences, or `plan` found blockers
  2    bad configuration or usage (the message names the setting or option)
  3    fatal: authentication refused, a target unreachable or full, a damaged state
  4    another run holds the state lock
  130  interrupted by Ctrl-C (run the same command again: it resumes)
  143  stopped by SIGTERM (run the same command again: it resumes)"""
EXAMPLES = """\b
Examples:
  hirondelle init migration/             write hirondelle.toml and users.csv to fill in
  hirondelle -c migration/hirondelle.toml doctor
  hirondelle plan --csv plan.csv         the inventory, findings and a time estimate
  hirondelle plan --html plan.html       the same as a page for the client (--window 48h: waves)
  hirondelle run                         copy everything (again: resumes where it stopped)
  hirondelle sync                        carry what changed since, until the cut-over
  hirondelle verify                      compare source and target folder by folder
  hirondelle report --html report.html   what the runs did, as a page for the client
  hirondelle demo                        the whole flow on the built-in sandbox tenant"""


class WorkflowGroup(click.Group):
    """Lists its commands in workflow order rather than alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        def rank(name: str) -> tuple[int, str]:
            return (WORKFLOW.index(name) if name in WORKFLOW else len(WORKFLOW), name)

        return sorted(super().list_commands(ctx), key=rank)


def _config_after(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:  # given after the command: it wins over one given before
        ctx.ensure_object(dict)["config"] = value


config_option = click.option(
    "-c",
    "--config",
    "config_after",
    expose_value=False,
    callback=_config_after,
    help="Configuration file (also accepted before the command).",
)


@click.group(
    cls=WorkflowGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=f"{EXAMPLES}\n\n{EXIT_CODES}",
)
@click.option(
    "-c",
    "--config",
    default="hirondelle.toml",
    envvar="HIRONDELLE_CONFIG",
    show_default=True,
    help="Configuration file (env HIRONDELLE_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
@click.version_option(package_name="hirondelle")
@click.pass_context
def main(ctx: click.Context, config: str, verbose: int) -> None:
    """Move Microsoft 365 (mail, calendars, contacts, drives, Teams channels) into
    open-protocol servers, resumably."""
    from .migrator import logs

    logs.setup([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])
    ctx.obj = {"config": config, "verbose": verbose}


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option(
    "--matrix-server-name",
    default="example.org",
    show_default=True,
    help="The Matrix server name the application service registration is for.",
)
@reported
def init(directory: Path, force: bool, matrix_server_name: str) -> None:
    """Write a commented hirondelle.toml, a users.csv template and the Matrix application
    service registration (with a fresh token) in DIRECTORY."""
    from .migrator.templates import write_templates

    for path in write_templates(directory, force, matrix_server_name):
        click.echo(f"wrote {path}")


@main.command()
@config_option
@click.pass_context
@reported
def doctor(ctx: click.Context) -> None:
    """Check Graph, the users file and every target, logging in as every selected owner."""
    lines = asyncio.run(operations.doctor(_config(ctx)))
    for what, ok, detail in lines:
        out.print(f"[{'green' if ok else 'red'}]{'ok ' if ok else 'BAD'}[/] {what}: {detail}")
    if not all(ok for _, ok, _ in lines):
        sys.exit(EXIT_FATAL)


@main.command()
@config_option
@json_option
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the per-folder inventory as CSV (UTF-8 with a BOM) to this file.",
)
@click.option(
    "--findings-csv",
    "findings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the findings as CSV (UTF-8 with a BOM) to this file.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan as one self-contained HTML page for the client (prints as PDF).",
)
@click.option(
    "--window",
    metavar="DURATION",
    help="With --html: split the owners into waves that each fit a window this long "
    "(48h, 90m, 2d) under the estimate.",
)
@lang_option
@click.option(
    "--deep",
    is_flag=True,
    help="Also check every message and event (requests in proportion to the items).",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Run the --deep checks for one owner in N only (the 1st, the N+1th...).",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "reports", "graph"]),
    default="auto",
    show_default=True,
    help="Where the inventory counts mail and OneDrive: the tenant's usage reports "
    "(Reports.Read.All; a few days old), each owner's folders and drives, or the reports "
    "when Graph serves them.",
)
@click.pass_context
@reported
def plan(
    ctx: click.Context,
    as_json: bool,
    csv_path: Path | None,
    findings_path: Path | None,
    html_path: Path | None,
    window: str | None,
    lang: str | None,
    deep: bool,
    sample: int | None,
    source: PlanSource,
) -> None:
    """Dry run: inventory, findings and a time estimate. Writes nothing to the target.
    Exits 1 when it finds blockers (items the run would leave unwritten)."""
    window_seconds = _window(window, html_path)
    digest = None
    if html_path is not None:
        from .report.page import check_writable
        from .report.plan_digest import PlanDigest

        check_writable(html_path, "--html")
        digest = PlanDigest()
    config = _config(ctx)

    def run(sinks: Sinks | None = None) -> Plan:
        return asyncio.run(
            operations.plan(config, deep, sinks, sample or 0, source, notice=_notice)
        )

    if (
        csv_path is not None
        and findings_path is not None
        and csv_path.resolve() == findings_path.resolve()
    ):
        raise ConfigError("--findings-csv", f"{findings_path} is also the --csv file: name another")
    with contextlib.ExitStack() as stack:
        sinks: list[PlanSink] = []
        for option, path, writer in (
            ("--csv", csv_path, CsvPlanWriter),
            ("--findings-csv", findings_path, CsvFindingsWriter),
        ):
            if path is not None:  # found unwritable now, not after a long scan
                try:
                    file = stack.enter_context(open(path, "w", encoding=CSV_ENCODING, newline=""))
                except OSError as exc:
                    raise ConfigError(option, f"cannot write {path}: {exc.strerror}") from None
                sinks.append(writer(file))
        if digest is not None:
            sinks.append(digest)
        if as_json:  # rows are written as owners finish: memory stays flat
            document = JsonPlanWriter(sys.stdout)
            result = run(Sinks(document, *sinks))
            document.close(result)
        else:
            collected = Collected()
            result = run(Sinks(collected, *sinks))
    if not as_json:
        print_plan(
            out,
            result,
            collected.rows,
            collected.findings_in_order(),
            _duration(result.estimate_seconds),
        )
    if html_path is not None and digest is not None:
        from .report.pages import write_plan_page

        language = lang or default_language()
        write_plan_page(html_path, result, digest, config, window_seconds, language)
        _notice(f"wrote {html_path}")
    if result.blockers:
        sys.exit(EXIT_PARTIAL)


def _window(window: str | None, html_path: Path | None) -> float | None:
    if window is None:
        return None
    if html_path is None:
        raise ConfigError("--window", "the waves are part of the HTML page: give --html FILE too")
    from .report.waves import parse_window

    try:
        return parse_window(window)
    except ValueError:
        raise ConfigError(
            "--window", f"{window!r} is not a duration: write it as 48h, 90m, 2d or 3600s"
        ) from None


def _notice(line: str) -> None:
    click.echo(line, err=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


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
    config = _config(ctx)
    with ProgressReporter() as reporter:
        result = asyncio.run(
            operations.migrate(config, mode, reporter, workers=workers, detach=detach)
        )
    if result.detached:
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        else:
            out.print(
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
        out.print(
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
        out.print(f"audit log: {data['audit_log']}", markup=False, soft_wrap=True)
        out.print(f"log file: {data['log_file']}", markup=False, soft_wrap=True)


def _print_capped(label: str, lines: list[str]) -> None:
    """The first `SHOWN` lines of a list, then how many more the audit log holds."""
    for line in lines[:SHOWN]:
        out.print(f"  {label}: {line}", markup=False)
    if len(lines) > SHOWN:
        out.print(f"  ... and {len(lines) - SHOWN} more (the audit log has them all)", markup=False)


def _print_still_failed(workload: str, left: dict[str, Any]) -> None:
    """What this pass and earlier ones left unwritten, and what to do about it."""
    parts = []
    if left["failed_items"]:
        parts.append(f"{left['failed_items']} items failed ({len(left['owners'])} owners)")
    if left["unsettled_items"]:
        parts.append(f"{left['unsettled_items']} items interrupted mid-write")
    if left["failed_folders"]:
        parts.append(f"{len(left['failed_folders'])} folders not finished")
    out.print(
        f"{workload}: still missing on the target: {', '.join(parts)}; the audit log and "
        "`hirondelle status --owners` name them; `hirondelle retry-failed` (or the next run "
        "or sync) writes them again",
        markup=False,
    )


@main.command()
@config_option
@json_option
@workers_option
@detach_option
@click.pass_context
@reported
def run(ctx: click.Context, as_json: bool, workers: int | None, detach: bool) -> None:
    """Copy everything not yet copied; resumes where an interrupted run stopped."""
    _migrate(ctx, "run", as_json, workers, detach)


@main.command()
@config_option
@json_option
@workers_option
@detach_option
@click.pass_context
@reported
def sync(ctx: click.Context, as_json: bool, workers: int | None, detach: bool) -> None:
    """Carry new items, changes, moves and deletions since the last pass."""
    _migrate(ctx, "sync", as_json, workers, detach)


@main.command("retry-failed")
@config_option
@json_option
@workers_option
@detach_option
@click.pass_context
@reported
def retry_failed(ctx: click.Context, as_json: bool, workers: int | None, detach: bool) -> None:
    """Try again every item marked failed (an earlier copy is looked for first)."""
    _migrate(ctx, "retry-failed", as_json, workers, detach)


@main.command()
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
    from .migrator.coordinator import default_workers
    from .migrator.worker_nodes import serve

    config = _config(ctx)
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


@main.command()
@config_option
@json_option
@click.pass_context
@reported
def verify(ctx: click.Context, as_json: bool) -> None:
    """Compare source and target per folder and list every difference."""
    reports = asyncio.run(operations.check(_config(ctx)))
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
        out.print(
            f"{mark} {check.owner} {check.container}: source {check.source_count}, "
            f"target {check.target_count}, skipped {len(check.skipped)}",
            markup=False,
        )
        for diff in check.differences:
            out.print(f"    {diff.kind}: {diff.source_id or diff.ref}: {diff.detail}", markup=False)
        for _, note in check.notes:
            out.print(f"    note: {note}", markup=False)
    verdict = "verified" if report.verified else f"{len(report.differences)} difference(s)"
    counts = [f"{report.failed} failed"] if report.failed else []
    counts += [f"{report.skipped} skipped as announced"] if report.skipped else []
    counts += [f"{report.notes} noted above"] if report.notes else []
    out.print(f"{report.workload}: {verdict}" + (f" ({', '.join(counts)})" if counts else ""))


@main.command()
@config_option
@json_option
@click.option("--owners", "all_owners", is_flag=True, help="List every owner of the latest run.")
@click.pass_context
@reported
def status(ctx: click.Context, as_json: bool, all_owners: bool) -> None:
    """What the state says: items per workload, the latest run's owners (running ones,
    failed ones) and workers, and the last runs."""
    from .migrator.status import status_lines

    data = operations.status(_config(ctx))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for line in status_lines(data, all_owners):
        click.echo(line)


@main.command()
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
    from .report.page import check_writable
    from .report.pages import write_run_report

    check_writable(html_path, "--html")
    write_run_report(html_path, _config(ctx), lang or default_language())
    click.echo(f"wrote {html_path}")


@main.command()
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
    from .workloads.demo import run_demo, summary_lines

    with ProgressReporter() as reporter:
        summary = run_demo(
            directory,
            users=users,
            messages=messages,
            seed=seed,
            reporter=reporter,
            say=None if as_json else out.print,
        )
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:  # after the bars have stopped, so that nothing draws over it
        for line in summary_lines(summary, directory):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if not all(w["verified"] and not w["failed"] for w in summary.values()):
        sys.exit(EXIT_PARTIAL)


@main.group()
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
    from .sandbox.server import Limits, serve_forever
    from .sandbox.tenant import Tenant, TenantSpec

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


if __name__ == "__main__":
    main()
