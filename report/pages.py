"""The two pages: the plan (`plan --html`) and the run report (`report --html`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..migrator.config import Config
from ..migrator.plan import SEVERITIES, Plan
from . import charts
from .page import Formats, render, translations, write_page
from .plan_digest import PlanDigest, plan_context
from .run_digest import RunDigest

CHART_OWNERS = 15  # owners in the largest-owners chart


def names(language: str) -> dict[str, dict[str, str]]:
    """Workloads, severities, kinds of finding and results as the reader's language says them."""
    _ = translations(language).gettext
    return {
        "workload_names": {
            "mail": _("Mail"),
            "calendar": _("Calendars"),
            "contacts": _("Contacts"),
            "files": _("Files"),
            "chat": _("Teams channels"),
        },
        "severity_names": {"blocker": _("Blockers"), "warning": _("Warnings"), "info": _("Info")},
        "kind_names": {
            "oversize": _("Item over the target's size limit"),
            "path-refused": _("Path the target refuses"),
            "renamed": _("Folder renamed on the target"),
            "name-collision": _("Two folders with one target name"),
            "hidden-folder": _("Hidden folder, not carried"),
            "no-message-id": _("Messages without Message-ID"),
            "remote-item": _("Shortcut or item shared from another drive"),
            "onenote": _("OneNote notebook"),
            "sharepoint-modified": _("Office files SharePoint may have changed"),
            "event": _("Event carried differently"),
            "partial": _("Partly checked"),
            "channel": _("Teams channel"),
            "deleted": _("Deleted messages"),
            "largest": _("Largest files"),
            "shared": _("Shared item: its sharing is not carried"),
            "collision": _("Two files with one target name"),
        },
        "status_names": {
            "queued": _("queued"),
            "running": _("running"),
            "finished": _("finished"),
            "fatal": _("stopped by a fatal error"),
            "error": _("stopped by an unexpected error"),
            "interrupted": _("interrupted"),
            "done": _("done"),
            "incomplete": _("incomplete"),
            "failed": _("failed"),
        },
        "result_names": {
            "copied": _("copied"),
            "updated": _("updated"),
            "moved": _("moved"),
            "removed": _("removed"),
            "skipped": _("skipped"),
            "failed": _("failed"),
        },
    }


def _common(language: str, title: str) -> dict[str, Any]:
    return {
        **names(language),
        "severities": SEVERITIES,
        "title": title,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def plan_page(
    plan: Plan,
    digest: PlanDigest,
    logins: dict[str, str],
    window_seconds: float | None,
    language: str,
    title: str,
) -> str:
    context = {**_common(language, title), **plan_context(plan, digest, logins, window_seconds)}
    context["not_counted"] = [context["workload_names"].get(n, n) for n in plan.not_counted]
    formats, workload_names = Formats(language), context["workload_names"]
    context["rates"] = ", ".join(
        f"{formats.number(rate, 1)} ({workload_names.get(name, name)})"
        for name, rate in plan.rates.items()
    )
    context["charts"] = _plan_charts(context, language)
    return render("plan.html.j2", language, context)


def _plan_charts(context: dict[str, Any], language: str) -> dict[str, Markup]:
    formats, _ = Formats(language), translations(language).gettext
    workloads = context["workloads"]
    shown: dict[str, Markup] = {}
    labels = [context["workload_names"].get(name, name) for name in workloads]
    if any(t.bytes for t in workloads.values()):
        sizes = [t.bytes for t in workloads.values()]
        shown["workloads"] = charts.bars(
            _("Size per workload"), labels, {_("Size"): sizes}, formats.size
        )
    owners = [o for o in context["owners"][:CHART_OWNERS] if o.bytes]
    if owners:
        shown["owners"] = charts.bars(
            _("Largest owners"),
            [o.owner for o in owners],
            {_("Size"): [o.bytes for o in owners]},
            formats.size,
        )
    return shown


def run_page(digest: RunDigest, language: str, title: str) -> str:
    context = {**_common(language, title), **digest.context()}
    context["charts"] = _run_charts(digest, context, language)
    return render("run.html.j2", language, context)


def _run_charts(digest: RunDigest, context: dict[str, Any], language: str) -> dict[str, Markup]:
    formats, _ = Formats(language), translations(language).gettext
    shown: dict[str, Markup] = {}
    results = context["result_names"]
    workloads = [w for w in digest.results if any(digest.results[w].values())]
    if workloads:
        shown["results"] = charts.bars(
            _("Items per workload and result"),
            [context["workload_names"].get(w, w) for w in workloads],
            {
                results[r]: [digest.results[w][r] for w in workloads]
                for r in results
                if any(digest.results[w][r] for w in workloads)
            },
            formats.number,
            stacked=True,
        )
    labels, items, megabytes = digest.throughput()
    if len(labels) > 1:
        shown["throughput"] = charts.timeline(
            _("Items written per minute"),
            labels,
            {_("items per minute"): items},
            formats.number,
        )
        shown["bytes"] = charts.timeline(
            _("Megabytes written per minute"),
            labels,
            {_("MB per minute"): megabytes},
            lambda v: formats.number(v, 1),
        )
    return shown


def run_report(config: Config, language: str) -> str:
    """The run report of the state and audit folder `config` names."""
    from ..migrator.operations import status

    digest = RunDigest(status(config))
    digest.read_audit(config.audit_dir)
    return run_page(digest, language, report_title(config))


def report_title(config: Config) -> str:
    """The migration's name on the pages: the folder its configuration lives in."""
    return config.base_dir.name or str(config.base_dir)


def write_plan_page(
    path: Path,
    plan: Plan,
    digest: PlanDigest,
    config: Config,
    window_seconds: float | None,
    language: str,
    option: str = "--html",
) -> None:
    """The plan's page for `config`'s migration, written whole to `path`."""
    html = plan_page(plan, digest, config.users, window_seconds, language, report_title(config))
    write_page(path, html, option)


def write_run_report(path: Path, config: Config, language: str, option: str = "--html") -> None:
    """The run report of `config`'s state and audit logs, written whole to `path`."""
    write_page(path, run_report(config, language), option)
