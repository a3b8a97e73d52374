"""Log lines never carry a secret: the query of every URL is cut to its parameter names.

A pre-authenticated download URL (a SharePoint `tempauth`, a signed link) is a bearer
credential in its query string, and HTTP libraries log the URLs they request at debug
level. The record factory is process-wide, so the lines of every handler (the command's,
a worker's, Celery's) go through it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_URL_QUERY = re.compile(r"(https?://[^\s\"'<>?]+)\?([^\s\"'<>]*)")
_installed = {"done": False}


def redact(text: str) -> str:
    """`text` with the values of every URL's query replaced by "…"."""

    def cut(match: re.Match[str]) -> str:
        names = [part.split("=", 1)[0] for part in match.group(2).split("&") if part]
        return f"{match.group(1)}?" + "&".join(f"{name}=…" for name in names)

    return _URL_QUERY.sub(cut, text) if "://" in text else text


def setup(level: int, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    """Configure this process's logging at `level`, with every URL's query cut."""
    logging.basicConfig(level=level, format=fmt)
    if level > logging.DEBUG:  # azure-identity logs the identity platform's answer
        logging.getLogger("azure").setLevel(logging.CRITICAL)
    install_redaction()


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
