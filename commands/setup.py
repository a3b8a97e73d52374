"""The commands that prepare a migration: `init` writes the files to fill in, `doctor`
checks them against Graph and the targets."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from .common import EXIT_FATAL, config_of, config_option, out, reported


@click.command()
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
    from ..migrator.templates import write_templates

    for path in write_templates(directory, force, matrix_server_name):
        click.echo(f"wrote {path}")


@click.command()
@config_option
@click.pass_context
@reported
def doctor(ctx: click.Context) -> None:
    """Check Graph, the users file and every target, logging in as every selected owner."""
    from ..migrator import operations

    lines = asyncio.run(operations.doctor(config_of(ctx)))
    for what, ok, detail in lines:
        out().print(f"[{'green' if ok else 'red'}]{'ok ' if ok else 'BAD'}[/] {what}: {detail}")
    if not all(ok for _, ok, _ in lines):
        sys.exit(EXIT_FATAL)
