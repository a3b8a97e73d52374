"""Graph's wire format for the sandbox: query options, state tokens, errors, entity JSON.

The shapes follow Microsoft's documented responses: users
(https://learn.microsoft.com/en-us/graph/api/user-get), mail folders
(https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders) and messages
(https://learn.microsoft.com/en-us/graph/api/message-get).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hirondelle.sandbox.tenant_records import SandboxFolder, SandboxMessage, SandboxUser

if TYPE_CHECKING:
    pass

JSON = dict[str, Any]
PR_LAST_VERB_EXECUTED = "Integer 0x1081"
PR_MESSAGE_SIZE = "Integer 0x0E08"
_MESSAGE_DEFAULT_KEYS = (
    "createdDateTime lastModifiedDateTime changeKey categories receivedDateTime sentDateTime "
    "hasAttachments internetMessageId subject bodyPreview importance parentFolderId "
    "conversationId isDeliveryReceiptRequested isReadReceiptRequested isRead isDraft webLink "
    "inferenceClassification body sender from toRecipients ccRecipients bccRecipients replyTo "
    "flag"
).split()


class GraphError(Exception):
    """An OData error answer: HTTP status, Graph error code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str, client_request_id: str | None = None) -> JSON:
    """The documented OData error body (https://learn.microsoft.com/en-us/graph/errors)."""
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": client_request_id or str(uuid.uuid4()),
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


@dataclass(frozen=True)
class QueryOptions:
    """The OData system query options of one request (with or without the `$`)."""

    select: tuple[str, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    expand: str = ""
    orderby: str = ""
    skiptoken: str | None = None
    deltatoken: str | None = None
    include_hidden: bool = False

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> QueryOptions:
        def option(name: str) -> str | None:
            return query.get(f"${name}", query.get(name))

        select = option("select")
        top, skip = option("top"), option("skip")
        try:
            return cls(
                select=tuple(s.strip() for s in select.split(",") if s.strip()) if select else (),
                top=int(top) if top is not None else None,
                skip=int(skip) if skip is not None else 0,
                count=(option("count") or "").lower() == "true",
                expand=option("expand") or "",
                orderby=option("orderby") or "",
                skiptoken=option("skiptoken"),
                deltatoken=option("deltatoken"),
                include_hidden=(query.get("includeHiddenFolders") or "").lower() == "true",
            )
        except ValueError as error:
            raise GraphError(400, "BadRequest", f"Invalid query option: {error}") from None

    def page_size(self, default: int, maximum: int) -> int:
        """$top within Graph's range: messages default 10 and accept 1 to 1000."""
        if self.top is None:
            return default
        if not 1 <= self.top <= maximum:
            raise GraphError(400, "ErrorInvalidArgument", f"$top must be 1 to {maximum}.")
        return self.top

    def expanded_property_ids(self) -> tuple[str, ...] | None:
        """Ids asked for in `$expand=singleValueExtendedProperties($filter=id eq '...')`."""
        if not self.expand:
            return None
        if not self.expand.startswith("singleValueExtendedProperties"):
            raise GraphError(400, "BadRequest", f"Unsupported $expand: {self.expand}")
        ids = tuple(re.findall(r"'([^']+)'", self.expand))
        return ids or (PR_LAST_VERB_EXECUTED, PR_MESSAGE_SIZE)


def preferences(header: str | None) -> dict[str, str]:
    """Split a `Prefer` header into its preferences (odata.maxpagesize, IdType)."""
    found: dict[str, str] = {}
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.strip().lower()] = value.strip().strip('"')
    return found


def encode_token(state: Mapping[str, Any]) -> str:
    """An opaque state token ($skiptoken, $deltatoken): base64url JSON."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise GraphError(400, "BadRequest", "The state token is malformed.") from None
    if not isinstance(state, dict):
        raise GraphError(400, "BadRequest", "The state token is malformed.")
    return state


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def select_keys(entity: JSON, select: tuple[str, ...]) -> JSON:
    """Keep the selected properties; `id` and `@odata.*` annotations always stay."""
    if not select:
        return entity
    wanted = {name.lower() for name in select}
    return {
        k: v for k, v in entity.items() if k.startswith("@") or k == "id" or k.lower() in wanted
    }


def user_json(user: SandboxUser, select: tuple[str, ...] = ()) -> JSON:
    """The default property set of a user, in the documented order; `userType` and
    `proxyAddresses` only when selected, as Graph does."""
    given, _, surname = user.display_name.partition(" ")
    extra: JSON = {}
    if select:
        extra["userType"] = "Guest" if user.guest else "Member"
        extra["proxyAddresses"] = [f"SMTP:{user.mail}"] + [f"smtp:{a}" for a in user.aliases]
    return extra | {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given or None,
        "jobTitle": None,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.id,
    }


@dataclass(frozen=True)
class FolderCounts:
    child_folders: int
    total: int
    unread: int
    size: int


def folder_json(folder: SandboxFolder, counts: FolderCounts) -> JSON:
    return {
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_id,
        "childFolderCount": counts.child_folders,
        "unreadItemCount": counts.unread,
        "totalItemCount": counts.total,
        "sizeInBytes": counts.size,
        "isHidden": folder.hidden,
    }


def _address(pair: tuple[str, str]) -> JSON:
    return {"emailAddress": {"name": pair[0], "address": pair[1]}}


def conversation_id(subject: str) -> str:
    """One id per thread: the subject without reply and forward prefixes, hashed."""
    topic = re.sub(r"^\s*((re|fw|fwd|aw|tr)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    digest = hashlib.sha1(topic.strip().lower().encode()).digest()[:12]
    return "AAQk" + base64.urlsafe_b64encode(digest).decode()


def message_json(
    message: SandboxMessage, body: Callable[[], tuple[str, str]], options: QueryOptions
) -> JSON:
    """A message as Graph lists it; `body()` gives (html content, preview) only if needed."""
    wanted = {name.lower() for name in options.select}
    needs_body = not wanted or bool(wanted & {"body", "bodypreview"})
    content, preview = body() if needs_body else ("", "")
    sender = _address(message.sender)
    entity: JSON = {
        "@odata.etag": f'W/"{message.change_key}"',
        "id": message.id,
        "createdDateTime": iso(message.created if message.created.year > 1 else message.received),
        "lastModifiedDateTime": iso(
            message.modified if message.modified.year > 1 else message.received
        ),
        "changeKey": message.change_key,
        "categories": list(message.categories),
        "receivedDateTime": iso(message.received),
        "sentDateTime": iso(message.sent),
        "hasAttachments": message.has_attachments,
        "internetMessageId": message.internet_message_id,
        "subject": message.subject,
        "bodyPreview": preview,
        "importance": "normal",
        "parentFolderId": message.folder_id,
        "conversationId": conversation_id(message.subject),
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": message.is_read,
        "isDraft": message.is_draft,
        "webLink": (
            "https://outlook.office365.com/owa/?ItemID="
            f"{quote(message.id, safe='')}&exvsurl=1&viewmodel=ReadMessageItem"
        ),
        "inferenceClassification": "focused",
        "body": {"contentType": "html", "content": content},
        "sender": sender,
        "from": sender,
        "toRecipients": [_address(pair) for pair in message.to],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": {"flagStatus": message.flag_status},
    }
    entity = select_keys(entity, options.select)
    property_ids = options.expanded_property_ids()
    if property_ids is not None:
        entity["singleValueExtendedProperties"] = extended_properties(message, property_ids)
    return entity


def extended_properties(message: SandboxMessage, property_ids: tuple[str, ...]) -> list[JSON]:
    """MAPI properties the service knows a value for; values are strings, as Graph sends them."""
    values = {
        PR_LAST_VERB_EXECUTED.lower(): message.last_verb,
        PR_MESSAGE_SIZE.lower(): message.size,
    }
    found = []
    for property_id in property_ids:
        value = values.get(property_id.lower())
        if value is not None:
            found.append({"id": property_id, "value": str(value)})
    return found


class BodyCache:
    """(html body, preview) per message version, taken from the MIME's first text part.

    Large messages are parsed from their first 256 KiB only: the text part comes
    first and the attachments need not be read to show a preview.
    """

    PARSE_LIMIT = 256 * 1024

    def __init__(self, capacity: int = 2048) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._capacity = capacity

    def get(self, message: SandboxMessage, mime: Callable[[], bytes]) -> tuple[str, str]:
        key = (message.id, message.change_key)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        entry = body_from_mime(mime()[: self.PARSE_LIMIT])
        self._entries[key] = entry
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return entry


def body_from_mime(raw: bytes) -> tuple[str, str]:
    """The html body (a plain part is wrapped in <pre>) and a 255-character preview."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(parsed, EmailMessage):
        return "", ""
    html_part = parsed.get_body(preferencelist=("html",))
    plain_part = parsed.get_body(preferencelist=("plain",))
    plain = _part_text(plain_part)
    if html_part is not None:
        html = _part_text(html_part)
        text = plain or re.sub(r"<[^>]+>", " ", html)
    else:
        html = f"<html><body><pre>{escape(plain)}</pre></body></html>"
        text = plain
    preview = " ".join(text.split())[:255]
    return html, preview


def _part_text(part: Any) -> str:
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        return ""
