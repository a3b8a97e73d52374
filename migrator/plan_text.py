"""`plan` on a terminal: the inventory grouped by workload and owner with totals, then the
findings grouped by severity and kind (blockers first), then the summary.

Names are printed whole (long ones wrap) and never read as markup.
"""

from __future__ import annotations

import itertools

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from ..mappings.sizes import readable_size
from .plan import SEVERITIES, Finding, Plan, PlanRow, estimate_minutes

SHOWN = 20  # findings of one kind printed before "... and N more"


def print_plan(out: Console, plan: Plan, rows: list[PlanRow], findings: list[Finding]) -> None:
    """The whole plan as text; `findings` in the order to show them."""
    for workload, of_workload in itertools.groupby(rows, key=lambda r: r.workload):
        out.print(_workload_table(workload, list(of_workload)))
    _print_findings(out, findings)
    counts = ", ".join(f"{plan.severities[s]} {_plural(s, plan.severities[s])}" for s in SEVERITIES)
    _say(
        out,
        f"{plan.owners} owners, {plan.items} items, {readable_size(plan.bytes)} in "
        f"{plan.containers} folders; findings: {counts}; "
        f"estimated {duration_text(plan.estimate_seconds)} at "
        f"{_rates(plan)} Graph requests/s, "
        f"{plan.owner_concurrency} mailboxes at once",
    )
    if plan.report_date:
        left = (
            f"not counted, and none of their findings read: {', '.join(plan.not_counted)}"
            if plan.not_counted
            else "everything counted"
        )
        _say(
            out,
            f"Mail and OneDrive rows marked 'report' are Microsoft 365's usage reports as of "
            f"{plan.report_date} (a few days old); {left}; folder and file names not "
            "checked (--sample N checks N owners in full, --deep or --source graph every one).",
        )
    if plan.blockers:
        _say(
            out,
            f"{plan.blockers} {_plural('blocker', plan.blockers)}: what they name will not be "
            "carried unless it is dealt with first (see above); exit code 1",
        )


def _workload_table(workload: str, rows: list[PlanRow]) -> Table:
    """Owner named on its first row only, a bold total for owners with several folders;
    no size column where the workload has no sizes (calendars, address books)."""
    table = Table(title=workload, title_justify="left", show_footer=True)
    items, size = sum(r.items for r in rows), sum(r.bytes for r in rows)
    owners = len({r.owner for r in rows})
    sized = size > 0
    headings = [
        ("owner", f"{owners} owners"),
        ("folder", ""),
        ("target", ""),
        ("items", str(items)),
        *([("size", readable_size(size))] if sized else []),
        ("counted", ""),
    ]
    for name, footer in headings:
        justify: JustifyMethod = "right" if name in ("items", "size") else "left"
        table.add_column(name, footer=footer, justify=justify, overflow="fold")

    def add(cells: list[str], style: str = "") -> None:
        if not sized:
            del cells[4]
        table.add_row(*(Text(cell, style=style) for cell in cells))

    for owner, of_owner in itertools.groupby(rows, key=lambda r: r.owner):
        listed = list(of_owner)
        for number, row in enumerate(listed):
            name = owner if number == 0 else ""
            size_text = readable_size(row.bytes)
            add([name, row.container, row.target, str(row.items), size_text, row.counted])
        if len(listed) > 1:
            total_items = str(sum(r.items for r in listed))
            total_size = readable_size(sum(r.bytes for r in listed))
            add(["", "(all folders)", "", total_items, total_size, ""], style="bold")
    return table


def _print_findings(out: Console, findings: list[Finding]) -> None:
    for (severity, kind), group in itertools.groupby(findings, key=lambda f: (f.severity, f.kind)):
        listed = list(group)
        _say(out, f"{severity.upper()} {kind}: {len(listed)}")
        for finding in listed[:SHOWN]:
            _say(out, f"    {finding.owner}  {finding.container}: {finding.detail}")
        if len(listed) > SHOWN:
            _say(
                out,
                f"    ... and {len(listed) - SHOWN} more (--findings-csv FILE or --json has "
                "them all)",
            )


def _rates(plan: Plan) -> str:
    """Each workload's budget rate, "16.7 (mail, per owner), 20.0 (chats, for the whole
    tenant)"."""
    return (
        ", ".join(
            f"{rate:.1f} ({name}, "
            f"{'for the whole tenant' if name in plan.tenant_wide else 'per owner'})"
            for name, rate in plan.rates.items()
        )
        or "0.0"
    )


def _say(out: Console, line: str) -> None:
    out.print(line, markup=False, highlight=False)


def _plural(word: str, count: int) -> str:
    return word if count == 1 or word == "info" else f"{word}s"


def duration_text(seconds: float) -> str:
    """The estimate as the terminal shows it ("1h05m", "7m"), rounded as the page rounds it."""
    hours, minutes = divmod(estimate_minutes(seconds), 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
