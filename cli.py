"""The `hirondelle` command line: a thin skin over `migrator.operations`.

The group is here; its commands are in `commands/`, grouped by what they do.
Exit codes: see `EXIT_CODES` (printed by `hirondelle --help`).
"""

from __future__ import annotations

import logging

import click

from .commands.plan import plan
from .commands.reports import report, status, verify
from .commands.runs import retry_failed, run, sync, worker
from .commands.sandbox import demo, sandbox
from .commands.setup import doctor, init

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


for command in (
    init, doctor, plan, run, sync, verify, status, retry_failed, report, worker, demo, sandbox,
):  # fmt: skip
    main.add_command(command)


if __name__ == "__main__":
    main()
