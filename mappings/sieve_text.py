"""Sieve's lexical forms (RFC 5228 section 2.4): quoted strings, string lists, multi-line
`text:` strings and comments, written so that any Unicode value survives.

Pure. The script's text is built with LF and turned into CRLF at the very end by
`crlf`: the grammar of RFC 5228 (section 8.1) ends lines with CRLF, and a multi-line
string's value then carries CRLF line ends, which a vacation reply needs as mail.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

# C0 controls and DEL but TAB and LF: NUL is refused by Pigeonhole's lexer, a bare CR would
# break the CRLF rewrite, the others have no place in a filter or a reply.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def clean(value: str) -> str:
    """`value` as a script may carry it: valid UTF-8 (a lone surrogate becomes U+FFFD), NFC,
    line ends as LF, no control characters but TAB and LF."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _CONTROLS.sub("", value))


def quote(value: str) -> str:
    """A quoted string (RFC 5228 section 2.4.2): backslash and double quote escaped."""
    escaped = clean(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def string_list(values: Sequence[str]) -> str:
    """One value as a quoted string, several as a string list `["a", "b"]`."""
    if len(values) == 1:
        return quote(values[0])
    return "[" + ", ".join(quote(value) for value in values) + "]"


def multiline(value: str) -> str:
    """A multi-line string (RFC 5228 section 2.4.2): `text:`, the lines (one starting with
    "." gets a second one, "dot-stuffing"), and a line holding a single ".".

    The value always ends with a line end: one is added when it had none. The result
    ends with the "." line and its line end (the "." must be alone on its line), so what
    follows it (";") starts a new line."""
    lines = clean(value).split("\n")
    if lines[-1] == "":
        lines.pop()
    stuffed = ["." + line if line.startswith(".") else line for line in lines]
    return "text:\n" + "".join(line + "\n" for line in stuffed) + ".\n"


def comment(text: str) -> list[str]:
    """Hash comments (RFC 5228 section 2.3), one per line of `text`."""
    return ["# " + line if line else "#" for line in clean(text).split("\n")]


def commented(lines: Iterable[str]) -> list[str]:
    """Script lines turned into comments (a multi-line string's lines included), so that a
    rule Sieve cannot run stays readable without running."""
    out: list[str] = []
    for line in lines:
        out.extend("# " + part if part else "#" for part in line.split("\n"))
    return out


def crlf(text: str) -> str:
    """The script's text with CRLF line ends (the lines are built with LF)."""
    return text.replace("\n", "\r\n")
