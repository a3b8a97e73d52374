"""Outlook rule actions (Graph's messageRuleActions) as Sieve commands.

Pure. Every property of https://learn.microsoft.com/en-us/graph/api/resources/messageruleactions
has an entry in `ACTIONS`, in the order the commands are written: header edits and flags
first (imap4flags' `addflag` sets the flags of every later `fileinto` and of the implicit
keep, RFC 5232 section 3; a header edit likewise applies to what is filed after it), then
the redirections, the copies and moves, and `stop` last.

Outlook's forward and redirect both leave the message in the mailbox (redirect sends the
original unchanged, forward a new "FW:" message from the user:
http://www.klippert.com/TCC/Blog/2005/06/outlook-forward-my-mail-let-it-follow.html), so both
become `redirect :copy` (RFC 3894), which keeps the implicit keep.

A forward or redirect to an address outside the tenant's domains is kept as a comment
unless `external_forwarding` says otherwise: Exchange Online's outbound spam policy blocks
automatic forwarding to external recipients by default ("Automatic - System-controlled"
means Off, https://learn.microsoft.com/en-us/defender-office-365/outbound-spam-policies-external-email-forwarding),
so such a rule most likely did nothing in Microsoft 365 and would start sending mail
outside on the new server.

Folders are named with the mail workload's final IMAP names (`folder_names`); Sieve's
`fileinto` takes them in UTF-8 with the server's hierarchy delimiter (RFC 5228 section 4.1),
with `:create` (RFC 5490 section 3.2) so that a folder the mail run has not made yet is made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .mail_folders import join_folder, target_folder
from .sieve_parts import (
    MAX_KEYWORD_LENGTH,
    Action,
    Mailbox,
    Unmapped,
    keywords,
    recipient_addresses,
    strings,
)
from .sieve_text import clean, comment, quote, string_list

ActionResult = Action | Unmapped | None

_EXTERNAL = (
    "{} is outside the tenant's domains, where Exchange Online blocks automatic forwarding "
    "by default (set external_forwarding = true in [targets.rules] to carry it)"
)
MAX_REDIRECTS = 4
"""Pigeonhole's default `sieve_max_redirects` per message (the script reports more)."""
_ADDR_SPEC = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@[^@\s\"(),:;<>\[\]\\]+\.[^@\s\"(),:;<>\[\]\\]+$")


@dataclass(frozen=True)
class Folders:
    """Graph folder ids to the mailbox names `fileinto` takes."""

    names: Mapping[str, str]
    """Graph folder id -> the final IMAP name the mail workload gave it."""
    known: Mapping[str, Any]
    """snapshot["folders"]: id -> {"path": [...], "roles": [...]}."""
    delimiter: str

    def name(self, folder_id: Any) -> tuple[str, str | None] | Unmapped:
        """The mailbox name, with a note when it was computed here rather than given."""
        given = self.names.get(folder_id) if isinstance(folder_id, str) else None
        if given and clean(given).strip():  # an empty name would be refused at delivery
            return given, None
        folder = self.known.get(folder_id) if isinstance(folder_id, str) else None
        if not isinstance(folder, Mapping) or not strings(folder.get("path")):
            return Unmapped("the folder no longer exists in the mailbox")
        path = tuple(p for p in folder.get("path", ()) if isinstance(p, str))
        roles = tuple(r if isinstance(r, str) else None for r in folder.get("roles") or ())
        name = join_folder(target_folder(path, roles, {}), self.delimiter)
        note = (
            f"folder {'/'.join(path)!r} has no migrated mailbox yet: named {name!r} as "
            "the mail workload names it on a server without special-use folders"
        )
        return name, note

    def deleted_items(self) -> str | None:
        """The Deleted Items folder's name, when the snapshot names that folder."""
        for folder_id, folder in sorted(self.known.items()):
            roles = folder.get("roles") if isinstance(folder, Mapping) else None
            if isinstance(roles, list) and roles and roles[-1] == "deleteditems":
                named = self.name(folder_id)
                if not isinstance(named, Unmapped):
                    return named[0]
        return None


def _fileinto(
    mailbox: Mailbox, name: str, copy: bool, note: str | None, special_use: str = ""
) -> Action:
    create = "mailbox" in mailbox.extensions
    if not create:
        note = (note + "; " if note else "") + "the folder must exist (no :create on this server)"
    flags = (" :copy" if copy else "") + special_use + (" :create" if create else "")
    requires = {"fileinto"} | ({"copy"} if copy else set()) | ({"mailbox"} if create else set())
    if special_use:
        requires.add("special-use")
    return Action((f"fileinto{flags} {quote(name)};",), frozenset(requires), note)


def _to_folder(copy: bool) -> Callable[[Any, Mailbox, Folders], ActionResult]:
    def action(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
        if not value:
            return None
        named = folders.name(value)
        if isinstance(named, Unmapped):
            return named
        return _fileinto(mailbox, named[0], copy, named[1])

    return action


def _delete(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
    if value is not True:
        return None
    known = folders.deleted_items()
    if known is not None:
        return _fileinto(mailbox, known, False, None)
    fallback = join_folder(target_folder(("Deleted Items",), ("deleteditems",), {}), "/")
    if "special-use" in mailbox.extensions:
        # RFC 8579: the server's own \Trash folder, the name only when it has none
        return _fileinto(mailbox, fallback, False, None, ' :specialuse "\\\\Trash"')
    note = (
        f"moved to {fallback!r}: the server's Deleted Items folder is not known here and "
        "the server has no special-use extension (RFC 8579) to find it"
    )
    return _fileinto(mailbox, fallback, False, note)


def _permanent_delete(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
    return Action(("discard;",)) if value is True else None


def _mark_as_read(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
    return Action(('addflag "\\\\Seen";',), frozenset({"imap4flags"})) if value is True else None


def _categories(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
    names = strings(value)
    if not names:
        return None
    flags, too_long = keywords(value)
    why = (
        f"keyword {too_long[0]!r} is longer than Dovecot's default limit of "
        f"{MAX_KEYWORD_LENGTH} characters (mail_max_keyword_length)"
        if too_long
        else ""
    )
    if not flags:
        return Unmapped(why) if too_long else None
    lines = [*comment(f"categories {', '.join(names)} as IMAP keywords")]
    lines.append(f"addflag {string_list(flags)};")
    return Action(tuple(lines), frozenset({"imap4flags"}), f"{why}: left out" if too_long else None)


def _redirect(forward: bool) -> Callable[[Any, Mailbox, Folders], ActionResult]:
    def action(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
        addresses = recipient_addresses(value)
        if not addresses:
            return None
        bad = [a for a in addresses if not _ADDR_SPEC.match(a)]
        if bad:
            return Unmapped(f"{bad[0]!r} is not an Internet mail address")
        outside = (
            [] if mailbox.external_forwarding else [a for a in addresses if not mailbox.internal(a)]
        )
        if outside and len(outside) == len(addresses):
            return Unmapped(_EXTERNAL.format(", ".join(outside)))
        lines = [f"redirect :copy {quote(a)};" for a in addresses if a not in outside]
        notes = ["forwarded as a redirect: the original message, not a new 'FW:' one"] * forward
        if outside:
            lines += comment(f"not carried: redirect to {', '.join(outside)}")
            notes.append(_EXTERNAL.format(", ".join(outside)) + ": left out")
        return Action(tuple(lines), frozenset({"copy"}), "; ".join(notes) or None)

    return action


def _importance(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
    """Only with "editheader" (RFC 5293), which servers enable by choice (Pigeonhole does
    not by default): the Importance header Outlook writes, the older X-Priority removed."""
    if value not in ("low", "normal", "high"):
        return None if value in (None, "") else Unmapped(f"unknown importance {value!r}")
    if "editheader" not in mailbox.extensions:
        return Unmapped("Sieve cannot change a message's importance without editheader")
    lines = ['deleteheader "importance";', 'deleteheader "x-priority";']
    if value != "normal":
        lines.append(f'addheader "Importance" {quote(value)};')
    return Action(tuple(lines), frozenset({"editheader"}))


def _stop(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
    return Action(("stop;",)) if value is True else None


def _never(what: str) -> Callable[[Any, Mailbox, Folders], ActionResult]:
    def action(value: Any, mailbox: Mailbox, folders: Folders) -> ActionResult:
        if value in (None, False, "", [], {}):
            return None
        return Unmapped(what)

    return action


ACTIONS: Mapping[str, Callable[[Any, Mailbox, Folders], ActionResult]] = {
    "markImportance": _importance,
    "markAsRead": _mark_as_read,
    "assignCategories": _categories,
    "forwardTo": _redirect(forward=True),
    "redirectTo": _redirect(forward=False),
    "forwardAsAttachmentTo": _never("Sieve cannot forward a message as an attachment"),
    "copyToFolder": _to_folder(copy=True),
    "moveToFolder": _to_folder(copy=False),
    "delete": _delete,
    "permanentDelete": _permanent_delete,
    "stopProcessingRules": _stop,
}


def rule_actions(
    actions: Any, mailbox: Mailbox, folders: Folders
) -> list[tuple[str, Action | Unmapped]]:
    """The actions of a messageRuleActions object in `ACTIONS` order, then those this
    version does not know (as `Unmapped`), each with its property name."""
    if not isinstance(actions, Mapping):
        return []
    out: list[tuple[str, Action | Unmapped]] = []
    unknown = sorted(k for k in actions if k not in ACTIONS and not k.startswith("@odata."))
    for name in [*ACTIONS, *unknown]:
        mapper = ACTIONS.get(name, _never("an action this version does not know"))
        value = actions.get(name)
        result = mapper(value, mailbox, folders)
        if result is None and isinstance(value, list) and value:
            result = Unmapped("holds no usable value")
        if isinstance(result, Action):
            missing = mailbox.lacks(result.requires)
            if missing:
                result = Unmapped(f"the server has no Sieve extension {', '.join(missing)}")
        if result is not None:
            out.append((name, result))
    return out
