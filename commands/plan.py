"""`hirondelle plan`: the dry run, its inventory, findings and estimate, as text, JSON,
CSV or the client's HTML page."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..migrator.errors import ConfigError
from .common import (
    EXIT_PARTIAL,
    config_of,
    config_option,
    default_language,
    json_option,
    lang_option,
    notice,
    out,
    reported,
)

if TYPE_CHECKING:
    from ..migrator.operations import PlanSource
    from ..migrator.plan import Plan, PlanSink
    from ..migrator.plan_output import Sinks


@click.command()
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
    from ..migrator import operations
    from ..migrator.plan_output import (
        CSV_ENCODING,
        Collected,
        CsvFindingsWriter,
        CsvPlanWriter,
        JsonPlanWriter,
        Sinks,
    )
    from ..migrator.plan_text import print_plan

    window_seconds = _window(window, html_path)
    digest = None
    if html_path is not None:
        from ..report.page import check_writable
        from ..report.plan_digest import PlanDigest

        check_writable(html_path, "--html")
        digest = PlanDigest()
    config = config_of(ctx)

    def run(sinks: Sinks | None = None) -> Plan:
        return asyncio.run(operations.plan(config, deep, sinks, sample or 0, source, notice=notice))

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
            out(),
            result,
            collected.rows,
            collected.findings_in_order(),
        )
    if html_path is not None and digest is not None:
        from ..report.pages import write_plan_page

        language = lang or default_language()
        write_plan_page(html_path, result, digest, config, window_seconds, language)
        notice(f"wrote {html_path}")
    if result.blockers:
        sys.exit(EXIT_PARTIAL)


def _window(window: str | None, html_path: Path | None) -> float | None:
    if window is None:
        return None
    if html_path is None:
        raise ConfigError("--window", "the waves are part of the HTML page: give --html FILE too")
    from ..report.waves import parse_window

    try:
        return parse_window(window)
    except ValueError:
        raise ConfigError(
            "--window", f"{window!r} is not a duration: write it as 48h, 90m, 2d or 3600s"
        ) from None
