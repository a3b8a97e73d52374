"""The sandbox's mail resources: users, mail folders, messages, `$value` and delta.

Routing and paging for the mail part of the emulated Graph API; the JSON shapes and
query handling it relies on live in `odata.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from hirondelle.sandbox.tenant_records import SandboxFolder, SandboxMessage, SandboxUser

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

from multidict import CIMultiDict

from hirondelle.sandbox.odata import (
    JSON,
    BodyCache,
    FolderCounts,
    GraphError,
    QueryOptions,
    decode_token,
    encode_token,
    folder_json,
    iso,
    message_json,
    preferences,
    select_keys,
    user_json,
)
from hirondelle.sandbox.outlook_ids import presented, resolve, wants_immutable
from hirondelle.sandbox.service import Gate
from hirondelle.sandbox.sync_states import SyncStates
from hirondelle.sandbox.throttle import MailboxThrottle

# -- the mail resources ----------------------------------------------------------------

DELTA_SEGMENTS = {"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"}
FOLDER_SIZE_PROPERTY = "Long 0x0E08"
DELTA_DEFAULT_PAGE = 10
DELTA_MAX_PAGE = 1000
SYNC_STATE_NOT_FOUND = (
    "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again."
)


@dataclass(frozen=True)
class GraphRequest:
    """One Graph request (top level or inside `$batch`), its path split into segments."""

    method: str
    segments: list[str]  # percent-decoded, original case
    query: Mapping[str, str]
    headers: Mapping[str, str]
    base_url: str  # ".../v1.0", for links

    @classmethod
    def create(
        cls,
        method: str,
        raw_path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        base_url: str,
    ) -> GraphRequest:
        segments = [unquote(part) for part in raw_path.split("/") if part]
        # Header names are case-insensitive (RFC 9110): clients send `prefer` as often as `Prefer`.
        return cls(method, segments, dict(query), CIMultiDict(headers), base_url)

    @property
    def names(self) -> list[str]:
        return [segment.lower() for segment in self.segments]

    def link(self, **overrides: str) -> str:
        """This request's URL with some query options replaced (for @odata.nextLink)."""
        dropped = {name.lstrip("$").lower() for name in overrides}
        query = {k: v for k, v in self.query.items() if k.lstrip("$").lower() not in dropped}
        query.update({f"${name}": value for name, value in overrides.items()})
        path = "/".join(quote(segment, safe="$()'=@") for segment in self.segments)
        return f"{self.base_url}/{path}?{urlencode(query, quote_via=quote, safe='$,()')}"


@dataclass
class GraphResponse:
    """A JSON answer, or the (user id, message id) whose MIME bytes to stream."""

    status: int = 200
    body: JSON | None = None
    headers: dict[str, str] = field(default_factory=dict)
    mime: tuple[str, str] | None = None


def mailbox_user(tenant: Tenant, key: str) -> SandboxUser:
    """The user whose mailbox `key` names (id or UPN); Outlook's 404 for an unknown one."""
    try:
        return tenant.user(key)
    except KeyError:
        message = f"The requested user '{key}' is invalid."
        raise GraphError(404, "ErrorInvalidUser", message) from None


def mailbox_read(tenant: Tenant, request: GraphRequest) -> SandboxUser:
    """The user of a read under /users/{id | upn}; Outlook's 405 for any other method."""
    if request.method != "GET":
        raise GraphError(405, "BadRequest", f"{request.method} is not supported here.")
    return mailbox_user(tenant, request.segments[1])


def mailbox_key(tenant: Tenant, key: str) -> str:
    """The throttling key of the mailbox `key` names: its lower-case UPN (the key's own
    when no user has it)."""
    try:
        return tenant.user(key).upn.lower()
    except KeyError:
        return key.lower()


class MailService:
    """Routes Graph requests on users, mail folders and messages to the tenant."""

    def __init__(self, tenant: Tenant, throttle: MailboxThrottle) -> None:
        self.throttle = throttle
        self.tenant = tenant
        self.bodies = BodyCache()
        self.expired_below = 0  # raised by expire_delta_tokens()
        self.sync_states = SyncStates()  # each page of a folder's delta walk is a generation

    def expire_delta_tokens(self) -> None:
        self.expired_below = self.tenant.seq + 1

    def mailbox_of(self, request: GraphRequest) -> str | None:
        """The mailbox a request targets (the throttling key), by lower-case UPN."""
        if len(request.segments) < 2 or request.names[0] != "users":
            return None
        return mailbox_key(self.tenant, request.segments[1])

    def owns(self, request: GraphRequest) -> bool:
        """Users, their mail folders and messages (and anything nobody else serves)."""
        names = request.names
        return len(names) <= 2 or names[2] in ("mailfolders", "messages")

    def gate(self, request: GraphRequest) -> Gate | None:
        mailbox = self.mailbox_of(request)
        return Gate(self.throttle, mailbox) if mailbox else None

    def handle(self, request: GraphRequest) -> GraphResponse:
        if request.method != "GET":
            raise GraphError(405, "BadRequest", f"{request.method} is not supported here.")
        options = QueryOptions.parse(request.query)
        response = self._route(request, options)
        if wants_immutable(request.headers):
            _apply_preference(response, 'IdType="ImmutableId"')
        return response

    def _route(self, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        names, segments = request.names, request.segments
        match names:
            case ["users"]:
                return self._users(request, options)
            case ["me", *_]:
                message = "/me request is only valid with delegated authentication flow."
                raise GraphError(400, "BadRequest", message)
            case ["users", _]:
                return self._user(segments[1], request, options)
            case ["users", _, "mailfolders"]:
                return self._folders(request, options, parent=None)
            case ["users", _, "mailfolders", _]:
                return self._folder(request, options)
            case ["users", _, "mailfolders", _, "childfolders"]:
                return self._folders(request, options, parent=segments[3])
            case ["users", _, "mailfolders", _, "messages"]:
                return self._messages(request, options, folder_key=segments[3])
            case ["users", _, "mailfolders", _, "messages", delta] if delta in DELTA_SEGMENTS:
                return self._delta(request, options)
            case ["users", _, "mailfolders", _, "messages", _, *rest] if rest in ([], ["$value"]):
                return self._message(request, options, segments[5], segments[3], bool(rest))
            case ["users", _, "messages"]:
                return self._messages(request, options, folder_key=None)
            case ["users", _, "messages", _, *rest] if rest in ([], ["$value"]):
                return self._message(request, options, segments[3], None, bool(rest))
        path = "/".join(segments)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.")

    # -- users ----------------------------------------------------------------------------

    def _users(self, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        users = self.tenant.users
        size = options.page_size(default=100, maximum=999)
        start = int(decode_token(options.skiptoken).get("o", 0)) if options.skiptoken else 0
        selected = f"({','.join(options.select)})" if options.select else ""
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#users{selected}"}
        body["value"] = [
            select_keys(user_json(u, options.select), options.select) for u in users[start:][:size]
        ]
        if start + size < len(users):
            body["@odata.nextLink"] = request.link(skiptoken=encode_token({"o": start + size}))
        return GraphResponse(body=body)

    def _user(self, key: str, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        try:
            user = self.tenant.user(key)
        except KeyError:
            message = f"Resource '{key}' does not exist or one of its queried reference-property"
            message += " objects are not present."
            raise GraphError(404, "Request_ResourceNotFound", message) from None
        body = {"@odata.context": f"{request.base_url}/$metadata#users/$entity"}
        return GraphResponse(
            body=body | select_keys(user_json(user, options.select), options.select)
        )

    # -- mail folders ---------------------------------------------------------------------

    def _lookup_folder(self, user: SandboxUser, key: str) -> SandboxFolder:
        try:
            return self.tenant.folder(user.id, key)
        except KeyError:
            message = "The specified object was not found in the store."
            raise GraphError(404, "ErrorItemNotFound", message) from None

    def _root_id(self, user: SandboxUser) -> str:
        try:
            return self.tenant.folder(user.id, "msgfolderroot").id
        except KeyError:
            return self.tenant.folder(user.id, "inbox").parent_id

    def _folder_entity(self, folder: SandboxFolder, options: QueryOptions) -> JSON:
        messages = self.tenant.messages(folder.user_id, folder.id)
        children = sum(1 for f in self.tenant.folders(folder.user_id) if f.parent_id == folder.id)
        counts = FolderCounts(
            child_folders=children,
            total=len(messages),
            unread=sum(1 for m in messages if not m.is_read),
            size=self.tenant.folder_size(folder.user_id, folder.id),
        )
        entity = select_keys(folder_json(folder, counts), options.select)
        wanted = options.expanded_property_ids()
        if wanted and FOLDER_SIZE_PROPERTY in wanted:
            # PR_MESSAGE_SIZE_EXTENDED: v1.0 mailFolder has no size property of its own.
            entity["singleValueExtendedProperties"] = [
                {"id": FOLDER_SIZE_PROPERTY, "value": str(counts.size)}
            ]
        return entity

    def _folders(
        self, request: GraphRequest, options: QueryOptions, parent: str | None
    ) -> GraphResponse:
        """Top-level folders (children of msgfolderroot) or one folder's children."""
        user = mailbox_user(self.tenant, request.segments[1])
        parent_id = self._lookup_folder(user, parent).id if parent else self._root_id(user)
        folders = [
            f
            for f in self.tenant.folders(user.id)
            if f.parent_id == parent_id
            and f.id != parent_id
            and (options.include_hidden or not f.hidden)
        ]
        where = f"mailFolders('{parent_id}')/childFolders" if parent else "mailFolders"
        context = f"{request.base_url}/$metadata#users('{user.id}')/{where}"
        return _page(request, options, folders, context, lambda f: self._folder_entity(f, options))

    def _folder(self, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        user = mailbox_user(self.tenant, request.segments[1])
        folder = self._lookup_folder(user, request.segments[3])
        context = f"{request.base_url}/$metadata#users('{user.id}')/mailFolders/$entity"
        return GraphResponse(
            body={"@odata.context": context} | self._folder_entity(folder, options)
        )

    # -- messages -------------------------------------------------------------------------

    def _message_entity(
        self, message: SandboxMessage, options: QueryOptions, request: GraphRequest
    ) -> JSON:
        def body() -> tuple[str, str]:
            return self.bodies.get(message, lambda: self.tenant.mime(message.user_id, message.id))

        entity = message_json(message, body, options)
        if "id" in entity:
            immutable = wants_immutable(request.headers)
            entity["id"] = presented(message.id, message.folder_id, immutable)
        return entity

    def _messages(
        self, request: GraphRequest, options: QueryOptions, folder_key: str | None
    ) -> GraphResponse:
        user = mailbox_user(self.tenant, request.segments[1])
        if folder_key is None:
            folders = self.tenant.folders(user.id)
            messages = [m for f in folders for m in self.tenant.messages(user.id, f.id)]
            where = "messages"
        else:
            folder = self._lookup_folder(user, folder_key)
            messages = list(self.tenant.messages(user.id, folder.id))
            where = f"mailFolders('{folder.id}')/messages"
        order = options.orderby.replace("+", " ").split()
        if order and order[0].lower() != "receiveddatetime":
            raise GraphError(400, "BadRequest", f"$orderby={options.orderby} is not supported.")
        descending = not order or (len(order) > 1 and order[1].lower() == "desc")
        messages.sort(key=lambda m: (m.received, m.id), reverse=descending)
        selected = f"({','.join(options.select)})" if options.select else ""
        context = f"{request.base_url}/$metadata#users('{user.id}')/{where}{selected}"
        return _page(
            request,
            options,
            messages,
            context,
            lambda m: self._message_entity(m, options, request),
            1000,
        )

    def _message(
        self,
        request: GraphRequest,
        options: QueryOptions,
        message_id: str,
        folder_key: str | None,
        content: bool,
    ) -> GraphResponse:
        user = mailbox_user(self.tenant, request.segments[1])
        message_id, issued_in = resolve(message_id)
        try:
            message = self.tenant.message(user.id, message_id)
        except KeyError:
            message = None
        if issued_in is not None and message is not None and message.folder_id != issued_in:
            message = None  # a default id dies when its message moves
        if folder_key is not None and message is not None:
            if self._lookup_folder(user, folder_key).id != message.folder_id:
                message = None
        if message is None:
            text = "The specified object was not found in the store."
            raise GraphError(404, "ErrorItemNotFound", text)
        if content:
            return GraphResponse(mime=(user.id, message.id))
        context = f"{request.base_url}/$metadata#users('{user.id}')/messages/$entity"
        return GraphResponse(
            body={"@odata.context": context} | self._message_entity(message, options, request)
        )

    # -- delta ----------------------------------------------------------------------------

    def _delta(self, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        """messages/delta (https://learn.microsoft.com/en-us/graph/api/message-delta).

        The initial round lists the folder by (receivedDateTime, id); later rounds
        list `tenant.changes_since`: removals first, then changes by sequence. A
        skiptoken holds a cursor (the last key sent), not an offset, so it stays valid
        while the tenant mutates: whatever changes behind the cursor has a newer
        sequence and comes in the next round (Graph documents such replays).
        """
        user = mailbox_user(self.tenant, request.segments[1])
        folder = self._lookup_folder(user, request.segments[3])
        state = self._delta_state(request, options, user, folder)
        prefer = preferences(request.headers.get("Prefer"))
        # The docs give no default or maximum page: the service sends 10 a page unless asked
        # (github.com/microsoftgraph/microsoft-graph-docs/issues/6006). `$top` is supported
        # (message-delta, "OData query parameters") and, as OData's $top, bounds the round,
        # not the page: `$top=2` gives two messages, then the round ends (microsoft-graph-docs
        # issue 2232), and a sync left with `$top` never reads the folder's other messages
        # (github.com/bkaankose/Wino-Mail/pull/716). What it does to a later round is not
        # documented: the sandbox bounds the initial round only (`_delta_entries`).
        size = DELTA_DEFAULT_PAGE
        if "odata.maxpagesize" in prefer and prefer["odata.maxpagesize"].isdigit():
            size = max(1, min(int(prefer["odata.maxpagesize"]), DELTA_MAX_PAGE))
        page_options = QueryOptions(select=tuple(state["sel"]), expand=state["exp"])
        entries, cursor = self._delta_entries(folder, state, size, page_options, request)
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#Collection(message)"}
        link = f"{request.base_url}/users/{user.id}/mailFolders/{folder.id}/messages/delta"
        generation = {"g": self.sync_states.issue((user.id, folder.id))}
        if cursor is not None:
            token = encode_token({**state, "k": cursor} | generation)
            body["@odata.nextLink"] = f"{link}?$skiptoken={token}"
        else:
            state_end = {"u": user.id, "f": folder.id, "s": state["t"]} | _carry(state)
            token = encode_token(state_end | generation)
            body["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        body["value"] = entries
        response = GraphResponse(body=body)
        if "odata.maxpagesize" in prefer:
            _apply_preference(response, f"odata.maxpagesize={size}")
        return response

    def _delta_state(
        self, request: GraphRequest, options: QueryOptions, user: SandboxUser, folder: SandboxFolder
    ) -> dict[str, Any]:
        """The round's state: from a token, or a fresh initial round."""
        token = options.skiptoken or options.deltatoken
        if token is None:
            options.expanded_property_ids()  # reject an unsupported $expand now
            if options.top is not None and options.top < 1:
                raise GraphError(400, "ErrorInvalidArgument", "$top must be 1 or more.")
            carry = {"sel": list(options.select), "exp": options.expand, "top": options.top}
            return {"m": "i", "u": user.id, "f": folder.id, "s": 0, "t": self.tenant.seq} | carry
        state = decode_token(token)
        if state.get("u") != user.id or state.get("f") != folder.id:
            raise GraphError(400, "BadRequest", "The state token belongs to another folder.")
        restart = f"{request.base_url}/users/{user.id}/mailFolders/{folder.id}/messages/delta"
        problem = self.sync_states.problem((user.id, folder.id), int(state.get("g", 0)))
        if problem is not None:  # an older page of the walk: see sync_states.py
            raise GraphError(410, "SyncStateNotFound", problem, {"Location": restart})
        if int(state["s"]) < max(self.tenant.oldest_delta_seq, self.expired_below) or (
            state.get("m") == "i" and int(state["t"]) < self.expired_below
        ):
            # https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset
            # and #token-duration: 410 Gone, a Location to restart, code syncStateNotFound.
            raise GraphError(410, "syncStateNotFound", SYNC_STATE_NOT_FOUND, {"Location": restart})
        if options.deltatoken is not None:
            return {**state, "m": "c", "t": self.tenant.seq}
        return state

    def _delta_entries(
        self,
        folder: SandboxFolder,
        state: Mapping[str, Any],
        size: int,
        options: QueryOptions,
        request: GraphRequest,
    ) -> tuple[list[JSON], list[Any] | None]:
        """One page of entries after the state's cursor, and the cursor if more remain."""
        user_id, folder_id = folder.user_id, folder.id
        keyed: list[tuple[list[Any], SandboxMessage | str]]
        if state["m"] == "i":
            current = self.tenant.messages(user_id, folder_id)
            keyed = [([0, iso(m.received) or "", m.id], m) for m in current]
            keyed.sort(key=lambda pair: pair[0])
            keyed = keyed[: state.get("top") or len(keyed)]  # $top bounds the whole round
        else:
            changes = self.tenant.changes_since(user_id, folder_id, int(state["s"]))
            keyed = [([0, "", gone], gone) for gone in changes.removed]
            upto = int(state["t"])
            keyed += [([1, f"{m.seq:020d}", m.id], m) for m in changes.changed if m.seq <= upto]
        keyed.sort(key=lambda pair: pair[0])
        cursor = state.get("k")
        if cursor is not None:
            keyed = [pair for pair in keyed if pair[0] > list(cursor)]
        page = keyed[:size]
        entries = [self._delta_entry(item, folder_id, options, request) for _, item in page]
        return entries, (page[-1][0] if len(keyed) > size else None)

    def _delta_entry(
        self,
        item: SandboxMessage | str,
        folder_id: str,
        options: QueryOptions,
        request: GraphRequest,
    ) -> JSON:
        if isinstance(item, str):
            # The documented reason for a message gone from the folder is "deleted"
            # (https://learn.microsoft.com/en-us/graph/delta-query-messages); its id is
            # the one it had in this folder.
            return {
                "@odata.type": "#microsoft.graph.message",
                "id": presented(item, folder_id, wants_immutable(request.headers)),
                "@removed": {"reason": "deleted"},
            }
        entity = self._message_entity(item, options, request)
        return {"@odata.type": "#microsoft.graph.message"} | entity


def _carry(state: Mapping[str, Any]) -> dict[str, Any]:
    """The query options a delta round carries from token to token."""
    return {"sel": state.get("sel", []), "exp": state.get("exp", ""), "top": state.get("top")}


def _apply_preference(response: GraphResponse, preference: str) -> None:
    applied = response.headers.get("Preference-Applied")
    response.headers["Preference-Applied"] = f"{applied}, {preference}" if applied else preference


def _page(
    request: GraphRequest,
    options: QueryOptions,
    items: list[Any],
    context: str,
    entity: Callable[[Any], JSON],
    maximum: int = 1000,
) -> GraphResponse:
    """A page of a collection with `$top`/`$skip`/`$count` and a `$skip` nextLink."""
    size = options.page_size(default=10, maximum=maximum)
    body: JSON = {"@odata.context": context}
    if options.count:
        body["@odata.count"] = len(items)
    body["value"] = [entity(item) for item in items[options.skip : options.skip + size]]
    if options.skip + size < len(items):
        body["@odata.nextLink"] = request.link(skip=str(options.skip + size))
    return GraphResponse(body=body)
