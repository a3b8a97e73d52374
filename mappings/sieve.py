"""One Sieve script (RFC 5228) per user from their Outlook inbox rules and automatic replies.

Pure: a snapshot (the user, the tenant's domains, the rules as Graph returns them,
automaticRepliesSetting, the folders the rules name) and the mail workload's folder names
in, a `SieveScript` out. The same input gives the same bytes.

The script holds, in this order: the `require` line, the automatic replies
(`sieve_vacation`), then one `if` block per rule in Outlook's order (`sequence`,
https://learn.microsoft.com/en-us/graph/api/resources/messagerule), conditions
(`sieve_predicates`) all holding and no exception holding, its actions (`sieve_actions`),
`stop` for `stopProcessingRules`.

Graph lists the inbox's rules only (server-side rules): rules on sent items and Outlook's
client-only rules never reach the snapshot, so they can be neither carried nor reported here.

Nothing is dropped silently: a disabled rule, a rule in error, and a rule with a condition
or an exception Sieve cannot test are written as comments (dropping a condition would make
the rule act on more mail than in Outlook; dropping an exception too); an action Sieve
cannot carry is a comment inside its rule. Each of these, and each approximation, is one
sentence in `findings`.

Lines end with CRLF, as RFC 5228's grammar says (section 8.1); Pigeonhole and other
servers accept it, and a vacation reply's text then has the line ends mail needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .sieve_actions import MAX_REDIRECTS, Folders, rule_actions
from .sieve_parts import Action, Mailbox, Unmapped, ordinal, strings
from .sieve_predicates import predicate_tests
from .sieve_text import clean, comment, commented, crlf, string_list
from .sieve_vacation import vacation_lines

__all__ = ["HEADER", "SCRIPT_EXTENSIONS", "SieveScript", "is_migrated", "rules_to_sieve"]

# The first line of every script the mapping writes: how a ManageSieve session knows a
# script of ours written under an earlier `script_name` from the user's own script.
HEADER = "Outlook inbox rules and automatic replies of"

SCRIPT_EXTENSIONS: frozenset[str] = frozenset(
    {
        "body",
        "comparator-i;ascii-numeric",
        "copy",
        "date",
        "envelope",
        "fileinto",
        "imap4flags",
        "mailbox",
        "mime",
        "relational",
        "vacation",
        "variables",
    }
)
"""Every capability the mapping may require when the server's list is not known.
("special-use", RFC 8579, is used only when the server advertises it.)"""

_INDENT = "    "


@dataclass(frozen=True)
class SieveScript:
    """A user's script: its text (UTF-8, CRLF line ends), one readable sentence per thing
    not carried exactly, and the capabilities its `require` line names (sorted)."""

    text: str
    findings: tuple[str, ...]
    requires: tuple[str, ...]


def rules_to_sieve(
    snapshot: Mapping[str, Any],
    folder_names: Mapping[str, str],
    *,
    extensions: frozenset[str] | None = None,
    delimiter: str = "/",
    external_forwarding: bool = False,
) -> SieveScript:
    """The Sieve script for one user's snapshot.

    `folder_names`: Graph folder id -> the mail workload's final IMAP name; a folder missing
    there but described in snapshot["folders"] is named as the mail workload would name it
    (and a finding says so). `extensions`: the server's SIEVE capability (None: every one
    of `SCRIPT_EXTENSIONS`); what needs a missing one is kept as a comment and reported.
    `delimiter`: the server's hierarchy delimiter, for the names computed here.
    `external_forwarding`: carry forwards and redirects to addresses outside the tenant's
    domains (else each is a comment and a finding, see `sieve_actions`)."""
    found = snapshot.get("user")
    user: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    zone = snapshot.get("timeZone")
    mailbox = Mailbox(
        addresses=_own_addresses(user),
        domains=_domains(snapshot, user),
        extensions=SCRIPT_EXTENSIONS if extensions is None else frozenset(extensions),
        time_zone=zone if isinstance(zone, str) else None,
        external_forwarding=external_forwarding,
    )
    known = snapshot.get("folders")
    folders = Folders(folder_names, known if isinstance(known, Mapping) else {}, delimiter)
    requires: set[str] = set()
    rule_lines: list[str] = []
    for position, rule in enumerate(_in_order(snapshot.get("rules")), start=1):
        rule_lines += ["", *_rule(rule, position, mailbox, folders, requires)]
    variables = "variables" in mailbox.extensions and "${" not in "\n".join(rule_lines)
    replies = vacation_lines(
        snapshot.get("automaticRepliesSetting"), user, mailbox, requires, variables
    )
    owner = user.get("upn") or user.get("mail") or "?"
    lines = comment(f"{HEADER} {owner}")
    if requires:
        lines.append(f"require {string_list(sorted(requires))};")
    if replies:
        lines += ["", *replies]
    lines += rule_lines
    _count_redirects(rule_lines, mailbox)
    return SieveScript(
        crlf("\n".join(lines) + "\n"), tuple(mailbox.findings), tuple(sorted(requires))
    )


def is_migrated(script: bytes) -> bool:
    """Whether a script's bytes are the mapping's (they open with `HEADER`)."""
    return script.startswith(f"# {HEADER} ".encode())


def _count_redirects(lines: list[str], mailbox: Mailbox) -> None:
    """Pigeonhole redirects one message to `MAX_REDIRECTS` addresses at most, by default."""
    count = sum(1 for line in lines if line.lstrip().startswith("redirect "))
    if count > MAX_REDIRECTS:
        mailbox.findings.append(
            f"the rules redirect to {count} addresses in all: a message matching them all "
            f"reaches only {MAX_REDIRECTS} of them on a server with Pigeonhole's default "
            "limit (sieve_max_redirects)"
        )


def _own_addresses(user: Mapping[str, Any]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for key in ("mail", "upn", "userPrincipalName"):
        value = user.get(key)
        if isinstance(value, str) and "@" in value:
            found.setdefault(value.strip().lower(), None)
    for proxy in strings(user.get("proxyAddresses")):
        kind, _, address = proxy.partition(":")
        if kind.lower() == "smtp" and "@" in address:
            found.setdefault(address.strip().lower(), None)
    return tuple(found)


def _domains(snapshot: Mapping[str, Any], user: Mapping[str, Any]) -> tuple[str, ...]:
    """The tenant's domains; the user's own domains when the snapshot names none."""
    domains = [d.lower() for d in strings(snapshot.get("domains"))]
    if not domains:
        domains = [a.rpartition("@")[2] for a in _own_addresses(user)]
    return tuple(dict.fromkeys(domains))


def _in_order(rules: Any) -> list[Mapping[str, Any]]:
    """The rules by `sequence` (Graph's order for equal or missing ones)."""
    listed = (
        [rule for rule in rules if isinstance(rule, Mapping)] if isinstance(rules, list) else []
    )

    def key(item: tuple[int, Mapping[str, Any]]) -> tuple[int, int]:
        sequence = item[1].get("sequence")
        return (sequence if isinstance(sequence, int) else 2**31, item[0])

    return [rule for _, rule in sorted(enumerate(listed), key=key)]


def _one_line(value: Any) -> str:
    return " ".join(clean(str(value)).split())


def _shown(value: Any) -> str:
    return _one_line(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _rule(
    rule: Mapping[str, Any], position: int, mailbox: Mailbox, folders: Folders, requires: set[str]
) -> list[str]:
    name = _one_line(rule.get("displayName") or "(unnamed)")
    label = f"rule {name!r} ({ordinal(position)})"
    heading = comment(f"Rule {position}: {name} (sequence {rule.get('sequence', '?')})")
    conditions, unmapped = predicate_tests(rule.get("conditions"), mailbox)
    exceptions, unmapped_exceptions = predicate_tests(rule.get("exceptions"), mailbox)
    actions = rule_actions(rule.get("actions"), mailbox, folders)
    why = _why_inactive(rule, label, unmapped, unmapped_exceptions, mailbox)
    tests = ([t.text for _, t in conditions], [t.text for _, t in exceptions])
    if why:
        tests[0].extend(_placeholders(rule.get("conditions"), unmapped))
        tests[1].extend(_placeholders(rule.get("exceptions"), unmapped_exceptions))
        return heading + comment(why) + commented(_block(tests, actions, rule))
    for kind, found in (("condition", conditions), ("exception", exceptions)):
        for key, test in found:
            requires |= test.requires
            if test.note:
                mailbox.findings.append(f"{label}: {kind} {key}: {test.note}")
    for key, action in actions:
        if isinstance(action, Unmapped):
            mailbox.findings.append(f"{label}: action {key}: {action.reason}: kept as a comment")
            continue
        requires |= action.requires
        if action.note:
            mailbox.findings.append(f"{label}: action {key}: {action.note}")
    _flags_late(label, actions, mailbox)
    return heading + _block(tests, actions, rule)


_FLAGGING = ("markAsRead", "assignCategories")
_FILING = ("moveToFolder", "copyToFolder", "delete")


def _flags_late(label: str, actions: list[tuple[str, Action | Unmapped]], mailbox: Mailbox) -> None:
    """imap4flags sets a copy's flags when it is filed (RFC 5232 section 3): a later rule's
    "mark as read" or categories do not reach a copy an earlier rule filed, where Outlook
    applies them to the moved message. Said as a finding (restructuring the script would
    change the order Outlook runs the rules in)."""
    carried = {key for key, action in actions if isinstance(action, Action)}
    flagging = [key for key in _FLAGGING if key in carried]
    if flagging and mailbox.filed:
        mailbox.findings.append(
            f"{label}: {' and '.join(flagging)} do not reach a message that "
            f"{', '.join(mailbox.filed)} already filed into a folder (Sieve sets a copy's "
            "flags when it is filed): that copy keeps the flags it was filed with"
        )
    if carried & set(_FILING) and "stopProcessingRules" not in carried:
        mailbox.filed.append(label)


def _why_inactive(
    rule: Mapping[str, Any],
    label: str,
    unmapped: list[tuple[str, Unmapped]],
    unmapped_exceptions: list[tuple[str, Unmapped]],
    mailbox: Mailbox,
) -> str | None:
    """Why the rule is written as a comment (and its findings), or None if it runs."""
    reasons: list[str] = []
    if rule.get("isEnabled") is False:
        reasons.append("disabled in Outlook")
    elif rule.get("hasError") is True:
        reasons.append("in error in Outlook, where it does not run")
    for key, item in unmapped:
        reasons.append(f"condition {key}: {item.reason}")
    for key, item in unmapped_exceptions:
        reasons.append(
            f"exception {key}: {item.reason} (without it the rule would act on more mail)"
        )
    for reason in reasons:
        mailbox.findings.append(f"{label}: {reason}: the rule is kept as a comment")
    return "Not active: " + "; ".join(reasons) if reasons else None


def _test_text(conditions: list[str], exceptions: list[str]) -> str:
    parts = list(conditions)
    if len(exceptions) == 1:
        parts.append(f"not {exceptions[0]}")
    elif exceptions:
        parts.append(f"not anyof ({', '.join(exceptions)})")
    if not parts:
        return "true"  # Outlook: a rule without conditions applies to every message
    if len(parts) == 1:
        return parts[0]
    return "allof (" + f",\n{_INDENT}{_INDENT}".join(parts) + ")"


def _placeholders(predicates: Any, unmapped: list[tuple[str, Unmapped]]) -> list[str]:
    """What a commented rule shows for the conditions Sieve cannot test."""
    values = predicates if isinstance(predicates, Mapping) else {}
    return [item.text or f"<Outlook {key} = {_shown(values.get(key))}>" for key, item in unmapped]


def _block(
    tests: tuple[list[str], list[str]],
    actions: list[tuple[str, Action | Unmapped]],
    rule: Mapping[str, Any],
) -> list[str]:
    lines = [f"if {_test_text(*tests)} {{"]
    for key, action in actions:
        if isinstance(action, Unmapped):
            value = _shown((rule.get("actions") or {}).get(key))
            note = comment(f"not carried: {key} = {value} ({action.reason})")
            lines += [_INDENT + line for line in note]
        else:
            lines += [_INDENT + line for line in action.lines]
    lines.append("}")
    return lines
