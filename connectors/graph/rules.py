"""The rules `Source`: each user's inbox rules and automatic replies, as one snapshot.

One container per user (`Sieve`) holding one item: the snapshot the Sieve mapping reads
(UTF-8 JSON; its shape is `Snapshot` below), read afresh at every pass:

- the rules, `GET /users/{id}/mailFolders/inbox/messageRules`, as Graph returns them
  (https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messagerules);
- `automaticRepliesSetting` and `timeZone` of `GET /users/{id}/mailboxSettings`
  (https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings);
- the display path and well-known names of every folder a rule moves or copies to
  (`moveToFolder`, `copyToFolder` hold folder ids:
  https://learn.microsoft.com/en-us/graph/api/resources/messageruleactions; a folder
  has no immutable id, its ordinary id being constant already ("Items that support
  immutable IDs", https://learn.microsoft.com/en-us/graph/outlook-immutable-id), so it
  is the mail workload's container id of that folder), each folder and its parents
  read by id in one `$batch` per level, the well-known names
  with the mail source's one `$batch` (`GraphMailSource.folder_roles`). The cost
  depends on the rules, not on the size of the mailbox, where the mail source's walk
  of the whole tree would read every parent folder.

Both reads need `MailboxSettings.Read` (application). Graph offers no delta for either,
so each pass reads them again (two requests, plus the folders' when a rule names
some): the item's version is a digest of the snapshot (and of the IMAP names the mail
workload gave the named folders, when the workload hands `folder_names`, and of the
target's settings of where the script goes, `placement`), so an
unchanged user is recognised by the engine and costs nothing more; a changed rule,
automatic reply, folder path or folder name gives a new version, and the script is
written again.

A user with no rule and automatic replies off has nothing to carry: no item, and no
script on the target (one written earlier is settled as a removal, as `deletions`
says). The plan says so for each such user.

The tenant's domains (senders there are "internal" to automatic replies) are read from
the directory the source lists users from once: the domains of the members' UPNs and
addresses, guests left out (their addresses are in other organisations' domains). That
needs no permission beyond `User.Read.All`, which listing users needs (the tenant's
verified domains, `GET /domains`, would need `Domain.Read.All` too).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypedDict

from ...migrator.errors import SkipItem
from ...migrator.model import Container, Item, Owner, Page
from .client import GraphClient
from .directory import directory_entries, owner_of
from .errors import Call
from .mail import GraphMailSource, _user_path

PERMISSION = "MailboxSettings.Read"
WORKLOAD = "rules"
CONTAINER_ID = "rules"  # the user's one container
CONTAINER_PATH = ("Sieve",)
ITEM_ID = "rules"  # the container's one item: the user's script
CURSOR = "rules:"  # + the version read last, or NOTHING (every pass reads again)
NOTHING = "none"
_SURROGATE = re.compile("[\ud800-\udfff]")
GUEST_MARK = "#EXT#"  # in the UPN Entra gives an invited (guest) user
SETTINGS_SELECT = ["automaticRepliesSetting", "timeZone"]
FOLDER_FIELDS = ["id", "displayName", "parentFolderId"]
ROOT = "msgfolderroot"
MAX_DEPTH = 32  # folder levels walked up from a named folder before giving up on it
KEPT_SNAPSHOTS = 256  # snapshots kept between `changes` and `fetch`, most recent
# A user's UPN -> Graph folder id -> the IMAP name the mail workload gave it (the state's)
FolderNames = Callable[[str], Mapping[str, str]]


class FolderPlace(TypedDict):
    path: list[str]  # display names from the root
    roles: list[str | None]  # Graph's well-known name of each level, or null


class Snapshot(TypedDict):
    """What the item's content holds (the interface the Sieve mapping reads)."""

    user: dict[str, Any]  # id, upn, mail, displayName, proxyAddresses
    domains: list[str]
    rules: list[dict[str, Any]]
    automaticRepliesSetting: dict[str, Any]
    timeZone: str
    folders: dict[str, FolderPlace]


class GraphRulesSource:
    """Reads inbox rules and automatic replies; implements `migrator.protocols.Source`."""

    workload = WORKLOAD

    def __init__(
        self,
        client: GraphClient,
        folder_names: FolderNames | None = None,
        placement: str = "",
        prepare: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.client = client
        self.folder_names = folder_names
        self.placement = placement  # the target's settings of where a script goes
        # awaited before each fetch: the workload reads the target's Sieve extensions
        # there, in a worker thread, so that the mapping never dials on the event loop
        self.prepare = prepare
        self.mail = GraphMailSource(client)  # its folder roles and paths
        self._directory: dict[str, dict[str, Any]] | None = None  # upn -> entry
        self._reading = asyncio.Lock()  # owners passed at once read the directory once
        self._domains: list[str] = []
        self._snapshots: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    async def owners(self) -> list[Owner]:
        """Every user of the tenant (`/users`, paged), read once for the domains too."""
        return [owner_of(entry) for entry in (await self._users()).values()]

    async def containers(self, owner: Owner) -> list[Container]:
        """The user's one container (no request: what it holds is read by `changes`)."""
        return [container_of(owner.upn)]

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """One page: the user's script item, and the version read as the cursor. When there
        is nothing to carry any more, the item's removal, said once: only after a pass
        that listed it (a pass from no cursor lists everything, and the engine removes
        what such a listing lacks)."""
        items = await self.listing(container)
        version = items[0].version if items else NOTHING
        gone = not items and cursor is not None and cursor != CURSOR + NOTHING
        yield Page(tuple(items), (ITEM_ID,) if gone else (), None, CURSOR + version)

    async def fetch(self, container: Container, item: Item) -> bytes:
        """The snapshot `changes` or `listing` read for this version, else read again."""
        if self.prepare is not None:
            await self.prepare()
        kept = self._snapshots.pop(container.owner, None)
        if kept is not None and kept[0] == item.version:
            return kept[1]
        content = await self.snapshot(container.owner)
        if content is None:
            raise SkipItem(f"{container.owner}: the inbox rules and automatic replies are gone")
        return content

    async def listing(self, container: Container) -> list[Item]:
        """The user's script item as it is now, or nothing when there is nothing to carry."""
        content = await self.snapshot(container.owner)
        if content is None:
            return []
        version = self._version(container.owner, content)
        self._keep(container.owner, version, content)
        return [Item(ITEM_ID, version, {"size": len(content)})]

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    async def snapshot(self, upn: str) -> bytes | None:
        """The user's snapshot as UTF-8 JSON (keys sorted: the same state gives the same
        bytes), or None when there is nothing to carry."""
        rules = await self._rules(upn)
        settings = await self._settings(upn)
        replies = dict(settings.get("automaticRepliesSetting") or {})
        if not rules and str(replies.get("status") or "disabled").lower() == "disabled":
            return None
        snapshot: Snapshot = {
            "user": await self._user(upn),
            "domains": self._domains,
            "rules": rules,
            "automaticRepliesSetting": replies,
            "timeZone": str(settings.get("timeZone") or "UTC"),
            "folders": await self._places(upn, named_folders(rules), deletes(rules)),
        }
        text = json.dumps(
            valid_text(snapshot), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        return text.encode("utf-8")

    # -- requests ------------------------------------------------------------------------

    async def _users(self) -> dict[str, dict[str, Any]]:
        async with self._reading:
            if self._directory is None:
                entries = await directory_entries(self.client)
                self._domains = tenant_domains(entries)
                self._directory = {str(e.get("userPrincipalName") or ""): e for e in entries}
            return self._directory

    async def _user(self, upn: str) -> dict[str, Any]:
        entry = (await self._users()).get(upn) or {}
        proxies = entry.get("proxyAddresses")
        return {
            "id": str(entry.get("id") or ""),
            "upn": upn,
            "mail": str(entry.get("mail") or upn),
            "displayName": str(entry.get("displayName") or ""),
            # the aliases: what "sent to me" and the automatic reply's :addresses match too
            "proxyAddresses": [str(p) for p in proxies] if isinstance(proxies, list) else [],
        }

    async def _rules(self, upn: str) -> list[dict[str, Any]]:
        url = self.client.graph_url + _user_path(upn, "mailFolders", "inbox", "messageRules")
        # A 404 means the user has no mailbox: the owner fails with that reason alone.
        call = Call(f"inbox rules of {upn}", PERMISSION, item=True)
        pages = self.client.pages(url, upn, call)
        return [dict(rule) async for page in pages for rule in page.get("value", [])]

    async def _settings(self, upn: str) -> dict[str, Any]:
        url = self.client.graph_url + _user_path(upn, "mailboxSettings", select=SETTINGS_SELECT)
        call = Call(f"automatic replies of {upn}", PERMISSION, item=True)
        return await self.client.get_json(url, upn, call)

    async def _places(
        self, upn: str, folder_ids: list[str], deleted_items: bool = False
    ) -> dict[str, FolderPlace]:
        """Each named folder that exists: its path from the root and the roles along it;
        with `deleted_items` (a rule deletes), the Deleted Items folder too, where Outlook's
        `delete` moves a message."""
        if not folder_ids and not deleted_items:
            return {}
        roles = await self.mail.folder_roles(upn)
        if deleted_items:
            trash = [i for i, role in sorted(roles.items()) if role == "deleteditems"]
            folder_ids = list(dict.fromkeys([*folder_ids, *trash[:1]]))
        if not folder_ids:
            return {}
        known = await self._folders_up(upn, folder_ids)
        places: dict[str, FolderPlace] = {}
        for folder_id in folder_ids:
            chain = _chain(folder_id, known)
            if chain:
                places[folder_id] = {
                    "path": [str(known[i].get("displayName") or "") for i in chain],
                    "roles": [roles.get(i) for i in chain],
                }
        return places

    async def _folders_up(self, upn: str, folder_ids: list[str]) -> dict[str, Mapping[str, Any]]:
        """The named folders and their parents up to the root, a `$batch` per level; the
        root's id under `ROOT`. A folder that is gone (404) is absent."""
        known: dict[str, Mapping[str, Any]] = {}
        asked: set[str] = set()
        wanted = set(folder_ids) | {ROOT}
        call = Call(f"folders named by the rules of {upn}", PERMISSION)
        for _ in range(MAX_DEPTH):
            paths = {
                key: _user_path(upn, "mailFolders", key, select=FOLDER_FIELDS)
                for key in sorted(wanted)
            }
            answers = await self.client.batch_get(upn, paths, call)
            asked |= wanted
            known.update((key, body) for key, body in answers.items() if body is not None)
            root = str((known.get(ROOT) or {}).get("id") or "")
            parents = {
                str(body.get("parentFolderId") or "")
                for key, body in known.items()
                if key != ROOT and key != root
            }
            wanted = {p for p in parents if p and p != root and p not in asked}
            if not wanted:
                break
        return known

    def _version(self, upn: str, content: bytes) -> str:
        """A digest of the snapshot and of the names the target already gave the folders
        the rules name (`folder_names`): the script depends on both, so a folder the mail
        workload writes or renames after the script was made has it written again."""
        digest = hashlib.sha256(content)
        if self.placement:
            digest.update(b"\0" + self.placement.encode("utf-8"))
        if self.folder_names is not None:
            snapshot = json.loads(content)
            named = [*named_folders(snapshot.get("rules") or []), *snapshot.get("folders", {})]
            if named:
                names = self.folder_names(upn)
                given = {folder: names.get(folder) for folder in named}
                digest.update(json.dumps(given, sort_keys=True).encode("utf-8"))
        return digest.hexdigest()[:32]

    def _keep(self, upn: str, version: str, content: bytes) -> None:
        self._snapshots[upn] = (version, content)
        self._snapshots.move_to_end(upn)
        while len(self._snapshots) > KEPT_SNAPSHOTS:
            self._snapshots.popitem(last=False)


def container_of(upn: str) -> Container:
    """The user's one container (see RULES: `path` is what the target and plan show)."""
    return Container(WORKLOAD, upn, CONTAINER_ID, CONTAINER_PATH)


def named_folders(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """The folder ids the rules move or copy to, in the order the rules name them."""
    found: dict[str, None] = {}
    for rule in rules:
        actions = rule.get("actions") or {}
        for key in ("moveToFolder", "copyToFolder"):
            if actions.get(key):
                found[str(actions[key])] = None
    return list(found)


def deletes(rules: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a rule moves messages to Deleted Items (`delete`)."""
    return any((rule.get("actions") or {}).get("delete") is True for rule in rules)


def tenant_domains(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The domains of the members' UPNs and addresses, lower case, sorted. A guest's
    (`userType` Guest, or a UPN with `#EXT#`, the form Entra gives invited users:
    https://learn.microsoft.com/en-us/entra/external-id/user-properties) address is
    in its own organisation's domain (gmail.com...): counting it would send the
    internal automatic reply to everyone there."""
    domains = set()
    for entry in entries:
        upn = str(entry.get("userPrincipalName") or "")
        if str(entry.get("userType") or "").lower() == "guest" or GUEST_MARK in upn.upper():
            continue
        for address in (entry.get("userPrincipalName"), entry.get("mail")):
            if address and "@" in str(address):
                domains.add(str(address).rsplit("@", 1)[1].lower())
    return sorted(domains)


def valid_text(value: Any) -> Any:
    """`value` (JSON as Graph sent it) with every lone surrogate, which JSON's `\\uD800`
    escapes can carry and UTF-8 cannot, turned into U+FFFD: the one place that makes rule
    names, display names, folder names and reply texts encodable for the snapshot, the
    script's names and addresses, and the IMAP folder names."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [valid_text(v) for v in value]
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    return value


def _chain(folder_id: str, known: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The ids from the top-level folder down to `folder_id`; empty when a folder on the
    way is unknown (gone, or deeper than `MAX_DEPTH`)."""
    root = str((known.get(ROOT) or {}).get("id") or "")
    chain: list[str] = []
    current = folder_id
    while current and current != root:
        if current not in known or current in chain or len(chain) >= MAX_DEPTH:
            return []
        chain.append(current)
        current = str(known[current].get("parentFolderId") or "")
    return chain[::-1]
