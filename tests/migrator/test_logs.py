"""No secret in any log line: a pre-authenticated URL keeps its parameter names only."""

from __future__ import annotations

import logging

import pytest

from hirondelle.migrator.logs import install_redaction, redact

LINK = (
    "https://contoso.sharepoint.com/_layouts/15/download.aspx?UniqueId=1b2c&tempauth=eyJ0eXAi"
    "OiJKV1Qi.secret-part&ApiVersion=2.0"
)


def test_the_query_of_a_url_keeps_only_its_names() -> None:
    said = redact(f'HTTP Request: GET {LINK} "HTTP/1.1 200 OK"')
    assert "eyJ0eXAi" not in said and "secret-part" not in said and "1b2c" not in said
    assert "download.aspx?UniqueId=…&tempauth=…&ApiVersion=…" in said
    assert said.endswith('"HTTP/1.1 200 OK"')
    assert redact("no url here?x=1") == "no url here?x=1"


def test_every_handler_sees_the_redacted_line(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        logging.getLogger("httpx").debug("HTTP Request: %s %s", "GET", LINK)
    assert "secret-part" not in caplog.text and "tempauth=…" in caplog.text
