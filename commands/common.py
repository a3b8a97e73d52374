"""What every command shares: its errors turned into one line and an exit code, the
configuration it reads, the options several commands take, and where output goes."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..migrator.errors import ConfigError, HirondelleError, LockedError

if TYPE_CHECKING:
    from rich.console import Console

    from ..migrator.config import Config

F = TypeVar("F", bound=Callable[..., Any])
EXIT_PARTIAL, EXIT_CONFIG, EXIT_FATAL, EXIT_LOCKED = 1, 2, 3, 4
SHOWN = 20  # lines of a list printed before "... and N more"


@functools.cache
def out() -> Console:
    """Where the commands print, made on first use: `--help`, or a command that prints
    nothing, does not import rich."""
    from rich.console import Console

    return Console()


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
            fail("stopped by SIGTERM: run the same command again to resume", 143)
        except ConfigError as exc:
            fail(f"configuration error: {exc}", EXIT_CONFIG)
        except LockedError as exc:
            fail(str(exc), EXIT_LOCKED)
        except HirondelleError as exc:
            fail(f"error: {exc}", EXIT_FATAL)
        except KeyboardInterrupt:
            fail("interrupted: run the same command again to resume", 130)
        except Exception as exc:  # noqa: BLE001 - the state's errors, and bugs: `_failure`
            fail(*_failure(exc))
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]  # the wrapper takes and returns what `fn` does


def _failure(exc: Exception) -> tuple[str, int]:
    """The line and exit code for an error that is not the tool's own."""
    # The state's errors are SQLAlchemy's: when SQLAlchemy is not loaded, `exc` is none of
    # them, and the commands that never open the state do not import it (about 0.3 s of CPU).
    if "sqlalchemy.exc" in sys.modules:
        from sqlalchemy.exc import DatabaseError, OperationalError

        if isinstance(exc, OperationalError):  # the state database went away mid-command
            detail = " ".join(str(exc.orig or exc).split())
            return (
                f"error: the state database stopped answering ({detail}); run the same "
                "command again once it is back: it resumes",
                EXIT_FATAL,
            )
        if isinstance(exc, DatabaseError):  # not a database, or a damaged one
            detail = " ".join(str(exc.orig or exc).split())
            return (
                f"error: the state database cannot be read ({detail}): restore it from a "
                "backup, or move it away and run again: a new state looks up what the "
                "targets already hold before writing, so nothing is written twice",
                EXIT_FATAL,
            )
    # a bug: one line here, the traceback in the log (-vv shows it)
    logging.getLogger("hirondelle").debug("unexpected error", exc_info=exc)
    return (
        f"internal error: {type(exc).__name__}: {exc}; nothing is lost (the state "
        "holds what was written): run it again as `hirondelle -vv ...` to see where "
        "it happened, and report it",
        EXIT_FATAL,
    )


def fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def config_of(ctx: click.Context) -> Config:
    from ..migrator.config import load_config

    return load_config(Path(ctx.obj["config"]))


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
lang_option = click.option(
    "--lang",
    type=click.Choice(["fr", "en"]),
    help="Language of the HTML page (default: the locale's, LC_ALL, LC_MESSAGES or LANG: "
    "French when it is French, English otherwise).",
)


def default_language() -> str:
    from ..report.page import default_language as from_locale

    return from_locale()


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


def notice(line: str) -> None:
    click.echo(line, err=True)
