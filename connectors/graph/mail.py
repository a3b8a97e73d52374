"""The mail `Source`: mailboxes, their folder tree, message changes and MIME content.

High-volume reads (delta pages, folder listings, `$batch` answers) are raw JSON;
folders and users are few, so they go the same way for one uniform error path.
Message bodies are never read into `Item.meta`; only `$value` carries content, for
small messages several `$value`s at once in a `$batch` (`fetch_many`).

Two MAPI properties have no first-class Graph field and are read as single-value
extended properties: PR_LAST_VERB_EXECUTED (`Integer 0x1081`: 102 reply, 103 reply
all, 104 forward) and PR_MESSAGE_SIZE (`Integer 0x0E08`).
https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get
`messages/delta` documents `$expand` (https://learn.microsoft.com/en-us/graph/api/message-delta),
but expanding extensions or extended properties on delta has been reported to
answer 500 "Value cannot be null" (microsoftgraph/microsoft-graph-docs issues
1993 and 2270). So delta pages carry only
plain fields, and the two properties come from the folder's `/messages` listing
with `$expand` (a large page: one request per 1,000 messages) or, for fewer changed
messages than the listing has pages, from a `$batch` of GETs with the same `$expand`.
Each part of a batch counts as one request against the mailbox's limits ("each
individual request within a batch is evaluated against applicable throttling limits",
https://learn.microsoft.com/en-us/graph/throttling), so the cheaper of the two is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import quote, urlencode

from ...migrator.errors import ItemError, Retriable, SkipItem
from ...migrator.model import Container, Item, Owner, Page
from .budget import MailboxBudget
from .client import GraphClient
from .directory import tenant_users
from .errors import Call

# Graph's well-known folder names, resolved to ids with one $batch per mailbox.
# https://learn.microsoft.com/en-us/graph/api/resources/mailfolder
WELL_KNOWN_FOLDERS = (
    "inbox", "sentitems", "deleteditems", "drafts", "junkemail", "archive", "outbox",
    "conversationhistory", "scheduled", "clutter", "syncissues", "conflicts",
    "localfailures", "serverfailures",
)  # fmt: skip
DELTA_SELECT = [
    "id", "changeKey", "internetMessageId", "receivedDateTime", "isRead", "isDraft",
    "flag", "categories", "parentFolderId",
]  # fmt: skip
FOLDER_SELECT = [
    "id", "displayName", "parentFolderId", "childFolderCount", "totalItemCount", "isHidden",
]  # fmt: skip
LAST_VERB = ("integer", 0x1081)
MESSAGE_SIZE = ("integer", 0x0E08)
FOLDER_SIZE = ("long", 0x0E08)  # PR_MESSAGE_SIZE_EXTENDED: 64-bit on folders
# v1.0 mailFolder has no size field; beta's `sizeInBytes` is read when a server sends it.
MESSAGE_PROPERTIES = (
    "singleValueExtendedProperties($filter=id eq 'Integer 0x1081' or id eq 'Integer 0x0E08')"
)
FOLDER_PROPERTIES = "singleValueExtendedProperties($filter=id eq 'Long 0x0E08')"
# The largest documented page of messages is $top=1000 (list messages); delta
# takes odata.maxpagesize as a maximum and may answer with less.
PAGE_SIZE = 1000
FOLDER_PAGE = 250


class MailListed(TypedDict):
    """A message's `Item.meta` in a listing (`listing`, for plan and verify)."""

    internetMessageId: str | None  # none: the target matches it by a digest of its content
    size: int | None  # the size Exchange counts (PR_MESSAGE_SIZE), None when not read
    lastVerb: int | None  # the last reply or forward (PR_LAST_VERB_EXECUTED)


class MailMeta(MailListed):
    """A message's `Item.meta` from delta (`changes`): what the mail mapper reads."""

    receivedDateTime: str | None
    isRead: bool
    isDraft: bool
    flagStatus: str
    categories: list[str]


@dataclass(frozen=True, slots=True)
class _Folder:
    """One folder of the tree with the names and roles along its path."""

    json: Mapping[str, Any]
    path: tuple[str, ...]
    path_roles: tuple[str | None, ...]


@dataclass
class _Properties:
    """lastVerb and size per message id, filled once per `changes` call."""

    values: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    listed: bool = False


class GraphMailSource:
    """Reads mail out of Microsoft Graph; implements `migrator.protocols.Source`."""

    workload = "mail"

    def __init__(self, client: GraphClient, budgets: MailboxBudget | None = None) -> None:
        self.client = client
        self.budgets = budgets or client.budgets

    async def owners(self) -> list[Owner]:
        """Every user of the tenant (`/users`, paged)."""
        return await tenant_users(self.client)

    async def containers(self, owner: Owner) -> list[Container]:
        """The visible folder tree, parents before children, with roles, counts and sizes."""
        visible, _ = await self.folder_tree(owner)
        return visible

    async def folder_tree(self, owner: Owner) -> tuple[list[Container], list[str]]:
        """`containers` and `hidden_folders` from one walk of the tree (for the plan)."""
        visible, hidden = await self._walk(owner.upn)
        return [_container(owner.upn, folder) for folder in visible], hidden

    async def hidden_folders(self, owner: Owner) -> list[str]:
        """Display paths of the hidden folders, which `containers` leaves out."""
        _, hidden = await self._walk(owner.upn)
        return hidden

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """Delta pages of the folder since `cursor` (a stored link), or all of it."""
        upn = container.owner
        target = cursor or self._delta_url(container)
        call = Call(f"changes of {upn} {container.display_path}", cursor=cursor is not None)
        properties = _Properties()
        prefer = [f"odata.maxpagesize={PAGE_SIZE}"]
        while True:
            body = await self.client.get_json(target, upn, call, prefer=prefer)
            values = body.get("value", [])
            live = [entry for entry in values if "@removed" not in entry]
            removed = tuple(entry["id"] for entry in values if "@removed" in entry)
            await self._fill_properties(container, [entry["id"] for entry in live], properties)
            items = tuple(_item(entry, properties.values.get(entry["id"])) for entry in live)
            next_link = body.get("@odata.nextLink")
            yield Page(items, removed, next_link, body.get("@odata.deltaLink"))
            if not next_link:
                return
            target = next_link
            call = Call(call.what, cursor=True)

    async def fetch(self, container: Container, item: Item) -> bytes:
        """The message's MIME (`$value`). Raises `SkipItem` if it is gone."""
        # Formatted directly: the request builders' URI-template expansion cost more CPU
        # than the download itself on this, the highest-volume call.
        url = self.client.graph_url + _mime_path(container.owner, item.source_id)
        call = Call(f"MIME of {container.owner} message {item.source_id}", item=True)
        return await self.client.message_bytes(url, container.owner, call)

    async def fetch_many(
        self, container: Container, items: Sequence[Item]
    ) -> list[bytes | ItemError | Retriable]:
        """The MIME of several small messages with one `$batch` of `$value`s: each part
        still counts as a request against the mailbox, but the client makes one HTTP
        exchange instead of twenty. A message that is gone is a `SkipItem` in its place,
        one that kept failing the `Retriable` that says why."""
        paths = {
            str(n): _mime_path(container.owner, item.source_id) for n, item in enumerate(items)
        }
        call = Call(f"MIME of {len(items)} messages of {container.owner}", item=True)
        bodies = await self.client.batch_bytes(container.owner, paths, call)
        return [
            content if content is not None else SkipItem(f"message {item.source_id} is gone")
            for item, content in ((item, bodies.get(str(n))) for n, item in enumerate(items))
        ]

    async def listing(self, container: Container) -> list[Item]:
        """Every message of the folder with its Message-ID, size and last verb."""
        return [item async for page in self.listing_pages(container) for item in page]

    async def listing_pages(self, container: Container) -> AsyncIterator[list[Item]]:
        """`listing` a page at a time."""
        first = self.client.graph_url + _user_path(
            container.owner,
            "mailFolders",
            container.source_id,
            "messages",
            select=["id", "changeKey", "internetMessageId"],
            expand=MESSAGE_PROPERTIES,
            top=PAGE_SIZE,
        )
        call = Call(f"listing of {container.owner} {container.display_path}")
        async for page in self.client.pages(first, container.owner, call):
            items: list[Item] = []
            for entry in page.get("value", []):
                last_verb, size = _message_properties(entry)
                meta: MailListed = {
                    "internetMessageId": entry.get("internetMessageId"),
                    "size": size,
                    "lastVerb": last_verb,
                }
                items.append(Item(entry["id"], entry.get("changeKey") or "", meta))
            yield items

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    def _delta_url(self, container: Container) -> str:
        # `delta()`, as the SDK's request builder spells the function call.
        return self.client.graph_url + _user_path(
            container.owner,
            "mailFolders",
            container.source_id,
            "messages",
            function="delta()",
            select=DELTA_SELECT,
        )

    async def _fill_properties(
        self, container: Container, ids: list[str], properties: _Properties
    ) -> None:
        """Find lastVerb and size for `ids`: from the folder's listing when it takes fewer
        requests than one $batch part per message, else from a $batch."""
        missing = [message_id for message_id in ids if message_id not in properties.values]
        if len(missing) > listing_requests(container) and not properties.listed:
            for item in await self.listing(container):
                properties.values[item.source_id] = (item.meta["lastVerb"], item.meta["size"])
            properties.listed = True
            missing = [message_id for message_id in missing if message_id not in properties.values]
        if not missing:
            return
        paths = {
            message_id: self._message_path(container.owner, message_id) for message_id in missing
        }
        call = Call(f"properties of {container.owner} messages")
        answers = await self.client.batch_get(container.owner, paths, call)
        for message_id, body in answers.items():
            properties.values[message_id] = _message_properties(body or {})

    def _message_path(self, upn: str, message_id: str) -> str:
        """`/users/{upn}/messages/{id}?$select=id&$expand=...`, relative to the version root."""
        return _user_path(upn, "messages", message_id, select=["id"], expand=MESSAGE_PROPERTIES)

    async def _walk(self, upn: str) -> tuple[list[_Folder], list[str]]:
        """Breadth-first walk of the folder tree: visible folders and hidden paths."""
        roles = await self.folder_roles(upn)
        visible: list[_Folder] = []
        hidden: list[str] = []
        level: list[tuple[str | None, tuple[str, ...], tuple[str | None, ...]]] = [(None, (), ())]
        while level:
            next_level = []
            for parent_id, path, path_roles in level:
                for entry in await self._folders(upn, parent_id):
                    name, role = entry.get("displayName") or "", roles.get(entry["id"])
                    folder = _Folder(entry, (*path, name), (*path_roles, role))
                    if entry.get("isHidden"):
                        hidden.append("/".join(folder.path))
                        continue
                    visible.append(folder)
                    if entry.get("childFolderCount", 1):
                        next_level.append((entry["id"], folder.path, folder.path_roles))
            level = next_level
        return visible, hidden

    async def _folders(self, upn: str, parent_id: str | None) -> list[Mapping[str, Any]]:
        """The direct children of `parent_id` (top level when None), hidden ones included."""
        below = () if parent_id is None else (parent_id, "childFolders")
        url = self.client.graph_url + _user_path(
            upn,
            "mailFolders",
            *below,
            select=FOLDER_SELECT,
            expand=FOLDER_PROPERTIES,
            top=FOLDER_PAGE,
            includeHiddenFolders="true",
        )
        # A 404 here means the user has no mailbox (unlicensed, or MailboxNotEnabledForRESTAPI):
        # the owner is skipped with that reason, not the whole run.
        call = Call(f"folders of {upn}", item=True)
        pages = self.client.pages(url, upn, call)
        return [entry async for page in pages for entry in page.get("value", [])]

    async def folder_roles(self, upn: str) -> dict[str, str]:
        """Folder id -> well-known name, with one $batch of `mailFolders/{name}`."""
        paths = {
            name: _user_path(upn, "mailFolders", name, select=["id"]) for name in WELL_KNOWN_FOLDERS
        }
        answers = await self.client.batch_get(upn, paths, Call(f"well-known folders of {upn}"))
        return {body["id"]: name for name, body in answers.items() if body and "id" in body}


def _user_path(
    upn: str,
    *segments: str,
    function: str = "",
    upn_safe: str = "",
    expand: str = "",
    top: int = 0,
    **query: str | Sequence[str],
) -> str:
    """`/users/{upn}/...`, relative to the version root: the UPN and each segment
    percent-encoded (an id may hold `/`, `+` or `=`; `upn_safe` names what the UPN keeps),
    then `function` as it is (`delta()`, `$value`), with OData query options:
    `select=[...]` as `$select=a,b`, `expand` and `top` as `$expand` and `$top`, others
    (`includeHiddenFolders`) as given.
    Formatted here: the request builders' URI-template expansion cost more CPU than the
    request it built."""
    options = {
        f"${name}" if name == "select" else name: value
        if isinstance(value, str)
        else ",".join(value)
        for name, value in query.items()
    }
    odata = {"$expand": expand, "$top": str(top) if top else ""}
    options.update((name, value) for name, value in odata.items() if value)
    path = "/users/" + quote(upn, safe=upn_safe)
    path += "".join("/" + quote(segment, safe="") for segment in segments)
    path += f"/{function}" if function else ""
    return path + "?" + urlencode(options, safe="$,", quote_via=quote) if options else path


def _mime_path(upn: str, message_id: str) -> str:
    """`/users/{upn}/messages/{id}/$value`, the UPN's `@` as it is (as this path was always
    sent; the other paths encode it, as the SDK's request builders did)."""
    return _user_path(upn, "messages", message_id, function="$value", upn_safe="@")


def listing_requests(container: Container) -> int:
    """Requests the folder's `/messages` listing takes: one per page of `PAGE_SIZE`."""
    return max(1, -(-container.total_items // PAGE_SIZE))


def _container(upn: str, folder: _Folder) -> Container:
    entry = folder.json
    return Container(
        workload="mail",
        owner=upn,
        source_id=entry["id"],
        path=folder.path,
        role=folder.path_roles[-1],
        path_roles=folder.path_roles,
        total_items=int(entry.get("totalItemCount") or 0),
        size_bytes=_property(entry, FOLDER_SIZE) or int(entry.get("sizeInBytes") or 0),
    )


def _item(entry: Mapping[str, Any], properties: tuple[int | None, int | None] | None) -> Item:
    """A delta entry as an `Item`; meta keys are the mapper's contract."""
    last_verb, size = properties or (None, None)
    flag = entry.get("flag") or {}
    meta: MailMeta = {
        "internetMessageId": entry.get("internetMessageId"),
        "receivedDateTime": entry.get("receivedDateTime"),
        "isRead": bool(entry.get("isRead")),
        "isDraft": bool(entry.get("isDraft")),
        "flagStatus": flag.get("flagStatus") or "notFlagged",
        "categories": list(entry.get("categories") or []),
        "lastVerb": last_verb,
        "size": size,
    }
    return Item(source_id=entry["id"], version=entry.get("changeKey") or "", meta=meta)


def _message_properties(entry: Mapping[str, Any]) -> tuple[int | None, int | None]:
    return _property(entry, LAST_VERB), _property(entry, MESSAGE_SIZE)


def _property(entry: Mapping[str, Any], wanted: tuple[str, int]) -> int | None:
    """An integer extended property; Graph may spell its id 'Integer 0xe08' or '0x0E08'."""
    for prop in _properties_of(entry):
        kind, _, tag = str(prop.get("id", "")).partition(" ")
        try:
            if (kind.lower(), int(tag, 16)) == wanted:
                return int(prop["value"])
        except (KeyError, ValueError):
            continue
    return None


def _properties_of(entry: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return entry.get("singleValueExtendedProperties") or []
