"""Log lines never carry a secret: the query of every URL is cut to its parameter names.

Every run also keeps its log lines, from INFO up, in a file beside its audit log
(`run-<id>.log`, readable by this user only): the terminal shows WARNING and up unless
`-v` is given, and the file is what an operator sends when something went wrong.

A pre-authenticated download URL (a SharePoint `tempauth`, a signed link) is a bearer
credential in its query string, and HTTP libraries log the URLs they request at debug
level. The record factory is process-wide, so the lines of every handler (the command's,
a worker's, Celery's) go through it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

_URL_QUERY = re.compile(r"(https?://[^\s\"'<>?]+)\?([^\s\"'<>]*)")
_installed = {"done": False}


def redact(text: str) -> str:
    """`text` with the values of every URL's query replaced by "…"."""

    def cut(match: re.Match[str]) -> str:
        names = [part.split("=", 1)[0] for part in match.group(2).split("&") if part]
        return f"{match.group(1)}?" + "&".join(f"{name}=…" for name in names)

    return _URL_QUERY.sub(cut, text) if "://" in text else text


FILE_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
_run_files: dict[Path, tuple[logging.Handler, int]] = {}  # path -> (handler, users)
_console = {"level": logging.WARNING}  # what `setup` gave the terminal, for worker processes


def setup(level: int, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    """Configure this process's logging: the terminal at `level`, a run's log file (see
    `open_run_log`) from INFO, every URL's query cut."""
    _console["level"] = level
    logging.basicConfig(level=level, format=fmt)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(level)
    root.setLevel(min(level, logging.INFO) if _run_files else level)
    if level > logging.DEBUG:  # azure-identity logs the identity platform's answer
        logging.getLogger("azure").setLevel(logging.CRITICAL)
        # a line per HTTP request would bury the run's own lines (and cost CPU per item)
        for chatty in ("httpx", "httpcore", "aiohttp.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    install_redaction()


def console_level() -> int:
    """The level this process's terminal lines start at (its workers' too)."""
    return _console["level"]


def open_run_log(path: Path) -> None:
    """Append this process's log lines from INFO up to `path` (created readable by this user
    only) until `close_run_log`; opened once per process however many callers ask."""
    handler, users = _run_files.get(path, (None, 0))
    if handler is None:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        # INFO records are made only while a run log takes them (not for `plan`, `status`)
        root.setLevel(min(root.level, logging.INFO))
        install_redaction()
    _run_files[path] = (handler, users + 1)


def close_run_log(path: Path) -> None:
    handler, users = _run_files.get(path, (None, 0))
    if handler is None:
        return
    if users > 1:
        _run_files[path] = (handler, users - 1)
        return
    del _run_files[path]
    root = logging.getLogger()
    root.removeHandler(handler)
    handler.close()
    if not _run_files:
        root.setLevel(_console["level"])


def install_redaction() -> None:
    if _installed["done"]:
        return
    _installed["done"] = True
    factory = logging.getLogRecordFactory()

    def redacted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        message = record.getMessage()
        safe = redact(message)
        if safe != message:
            record.msg, record.args = safe, None
        return record

    logging.setLogRecordFactory(redacted)
