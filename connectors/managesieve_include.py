"""The include of the migrated script from a user's own active Sieve script, and what in
that script would keep the include from working.

`include` (RFC 6609) runs the included script's commands as part of the including one,
so two things in the user's script defeat it:

- a `stop` outside any block (`keep; stop;` is a common ending): the include, added
  last, is never reached (RFC 5228 section 3.3: `stop` ends all processing);
- a `vacation` action when the migrated script has one too: RFC 5230 section 4.1 allows
  one vacation action per message, and Pigeonhole then refuses the whole message's
  script at delivery ("duplicate vacation action not allowed"), so none of the user's
  filtering runs either (https://doc.dovecot.org/2.3/configuration_manual/sieve/extensions/vacation/).

`obstacles` finds both by reading the script's commands (comments, strings and
multi-line `text:` strings skipped), so that the owner's item fails with what to do
rather than a run that reports success over a mailbox that no longer filters.
"""

from __future__ import annotations

import re

REQUIRE_INCLUDE = 'require "include";'
_TOKENS = re.compile(
    r"(?P<comment>#[^\n]*|/\*.*?\*/)"
    r'|(?P<string>"(?:\\.|[^"\\])*")'
    r"|(?P<text>text:[ \t]*(?:#[^\n]*)?\r?\n.*?\r?\n\.\r?\n)"
    r"|(?P<tag>:[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<open>\{)|(?P<close>\})",
    re.DOTALL,
)


def sieve_string(value: str) -> str:
    """A Sieve quoted string (RFC 5228 section 2.4.2)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def include_line(name: str) -> str:
    """What the user's active script gets to run ours. `:optional` (RFC 6609 section 3.2)
    keeps that script valid should ours be deleted later."""
    return f"include :personal :optional {sieve_string(name)};"


def includes(text: str, name: str) -> bool:
    return any(line.strip() == include_line(name) for line in text.splitlines())


def with_include(text: str, name: str) -> str:
    """`text` running the script `name` after its own commands: `require "include"` goes
    first (several `require` may open a script, RFC 5228 section 3.2, but none may follow
    another command), once, and the include last, so the user's own rules keep precedence."""
    newline = "\r\n" if "\r\n" in text else "\n"
    body = text if not text or text.endswith("\n") else text + newline
    first = body.split(newline, 1)[0].strip()
    require = "" if first == REQUIRE_INCLUDE else REQUIRE_INCLUDE + newline
    return f"{require}{body}{include_line(name)}{newline}"


def without_include(text: str, name: str) -> str:
    """`text` without the include line of `with_include` (its `require` stays: harmless,
    and `with_include` does not add a second one)."""
    return "".join(
        line for line in text.splitlines(keepends=True) if line.strip() != include_line(name)
    )


def commands(text: str) -> list[tuple[str, int]]:
    """The identifiers of a script (commands and tests) with the block depth of each."""
    found: list[tuple[str, int]] = []
    depth = 0
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "word":
            found.append((match.group().lower(), depth))
    return found


def has_vacation(text: str) -> bool:
    return any(word == "vacation" for word, _ in commands(text))


def obstacles(theirs: str, ours: str) -> list[str]:
    """Why including `ours` at the end of `theirs` would not carry the rules (empty: none)."""
    found = []
    if ("stop", 0) in commands(theirs):
        found.append(
            "it ends with a `stop` outside any rule, so an include added at its end never runs"
        )
    if has_vacation(theirs) and has_vacation(ours):
        found.append(
            "it has its own `vacation` and so has the migrated script (the automatic reply): "
            "two vacation actions make the server refuse the script at delivery, and then "
            "none of the user's filtering runs"
        )
    return found
