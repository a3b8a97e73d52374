"""The chat mapper: one Teams message (a channel's root post or reply, or a chat's message)
to Matrix events.

Pure: no network, no database, no file I/O. The content is the JSON document the Graph Teams
source fetches: {"message": <chatMessage as Graph returns it>, "hostedContents": {<id>:
{"contentType", "base64"}}, "team": {...}, "channel": {...}}, or for a chat (one-to-one,
group or meeting chat) {"message", "hostedContents", "chat": {"id", "chatType", "topic"}}.
Chats have no threads: a chat message that quotes another (a `messageReference`
attachment, https://learn.microsoft.com/en-us/graph/api/resources/chatmessageattachment)
becomes a Matrix reply (`m.in_reply_to` "$REPLY", the quoted message's id in
`attrs["reply_to"]`, https://spec.matrix.org/latest/client-server-api/#rich-replies)
without the quote in its text, as replies carry no fallback since Matrix 1.13; the quote
travels beside it (`attrs["reply_fallback"]`: body and HTML) for the target to put in front
of the message when the quoted one is not in the room. The payload's content is
{"events": [{"type", "content"}, ...]}: the message itself (several events when it is too
large for one), then one `m.reaction` per reaction. The target replaces "$ROOT" with the
thread root's event id, "$SELF" with the main event's id and each "mxc://hirondelle/<hosted
content id>" placeholder with the URI of the uploaded image.

Teams HTML is rewritten and sanitized by `chat_html`; mentions become pills plus
`m.mentions`; replies join the root's `m.thread` with the `m.in_reply_to` fallback for clients
without threads (https://spec.matrix.org/latest/client-server-api/#threading). System events
(https://learn.microsoft.com/en-us/graph/system-messages) become `m.notice` sentences
(`chat_system`); their `eventDetail` reads as `unknownFutureValue` unless the source asked
with `Prefer: include-unknown-enum-members`, and then only a generic sentence can be
written. A channel's space and room are `chat_rooms`'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..migrator.errors import ConfigError, GoneAtSource, SkipItem
from ..migrator.model import Item, Payload
from .chat_html import (
    Rewrites,
    escape,
    html_to_text,
    render_attachment,
    sanitize,
    split_html,
    teams_to_matrix,
    text_to_html,
)
from .chat_system import system_sentence

TEAMS_ID_KEY = "fi.hirondelle.teams_id"
PART_KEY = "fi.hirondelle.part"  # on the 2nd..nth event of a message split for size
PLACEHOLDER_PREFIX = "mxc://hirondelle/"
# Matrix refuses events over 65,536 bytes of canonical JSON (envelope and signatures
# included): https://spec.matrix.org/latest/client-server-api/#size-limits . The content
# stays under 60 KiB, leaving the rest to the envelope the homeserver adds.
MAX_CONTENT_BYTES = 60 * 1024
SYSTEM_USER = "teams-system"  # the puppet that says system events
SYSTEM_NAME = "Microsoft Teams"
DELETED_TEXT = "This message was deleted"
EDITED_MARK = "(edited)"
REACTION_EMOJI = {
    "like": "👍",
    "heart": "❤️",
    "laugh": "😆",
    "surprised": "😮",
    "sad": "😢",
    "angry": "😡",
}
_HOSTED = re.compile(r"/hostedContents/([^/?#]+)/\$value")
_FRACTION = re.compile(r"(\.\d{6})\d+")
_CLOSING_BLOCKS = re.compile(r"(?:</(?:p|div|li|ul|ol|blockquote|h[1-6])>\s*)*$")


@dataclass(frozen=True)
class ChatContext:
    """What the chat mapper needs to know about the target (bound by the registry)."""

    server_name: str
    puppet_prefix: str = "_m365_"
    users: Mapping[str, str] = field(default_factory=dict)  # Teams id / lower UPN -> real MXID
    links: Mapping[str, str] = field(default_factory=dict)  # SharePoint URL -> migrated URL
    deleted: str = "notice"  # "notice" | "skip"
    mode: str = "appservice"  # "appservice" | "bot"
    names: Mapping[str, str] = field(default_factory=dict)  # Teams user id -> display name

    def __post_init__(self) -> None:
        if self.deleted not in ("notice", "skip"):
            raise ConfigError("targets.chat.deleted", "must be 'notice' or 'skip'")
        if self.mode not in ("appservice", "bot"):
            raise ConfigError("targets.chat.mode", "must be 'appservice' or 'bot'")


def puppet_id(teams_user_id: str, context: ChatContext) -> str:
    """The Matrix id of the puppet standing for a Teams user (stable, opaque)."""
    digest = hashlib.sha256(teams_user_id.encode("utf-8")).hexdigest()[:16]
    return f"@{context.puppet_prefix}{digest}:{context.server_name}"


def matrix_user(teams_user_id: str, context: ChatContext) -> str:
    """The mapped real Matrix user of a Teams user, else its puppet."""
    real = context.users.get(teams_user_id) or context.users.get(teams_user_id.lower())
    return real or puppet_id(teams_user_id, context)


def txn_id(source_id: str) -> str:
    """The Matrix transaction id of a message's main event (the target suffixes the others)."""
    return "hirondelle-" + hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:32]


# -- messages -----------------------------------------------------------------------------


@dataclass
class _Rendering:
    """What rendering one message's body collected besides its HTML."""

    message: Mapping[str, Any]
    hosted: Mapping[str, Any]
    context: ChatContext
    mentioned: set[str] = field(default_factory=set)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    used_attachments: set[str] = field(default_factory=set)
    quotes_reply: bool = False  # a quoted message is a reply (chats), not only a quote
    reply: tuple[str, str] | None = None  # (quoted message id, the quote's HTML)

    def rewrites(self) -> Rewrites:
        return Rewrites(self.mention, self.image, self.attachment, self.link)

    def mention(self, at_id: str, text: str) -> str:
        for mention in self.message.get("mentions") or ():
            if str(mention.get("id")) != at_id:
                continue
            user = ((mention.get("mentioned") or {}).get("user")) or {}
            name = text.strip() or str(mention.get("mentionText") or "")
            if not user.get("id"):  # a team, channel or tag mention: no one to notify
                return escape(name)
            target = matrix_user(str(user["id"]), self.context)
            self.mentioned.add(target)
            return f'<a href="https://matrix.to/#/{escape(target)}">{escape(name)}</a>'
        return escape(text)

    def image(self, attributes: Mapping[str, str]) -> str:
        src, alt = attributes.get("src", ""), attributes.get("alt", "") or "image"
        found = _HOSTED.search(src)
        if found and found.group(1) in self.hosted:
            hosted_id = found.group(1)
            placeholder = self._media(hosted_id)
            if placeholder:
                size = "".join(
                    f' {k}="{escape(attributes[k])}"'
                    for k in ("width", "height")
                    if attributes.get(k, "").isdigit()
                )
                return f'<img src="{escape(placeholder)}" alt="{escape(alt)}"{size}>'
        if found or not src.lower().startswith(("https://", "http://")):
            return escape(f"[{alt} not available]")
        return f'<a href="{escape(src)}">{escape(alt)}</a>'

    def _media(self, hosted_id: str) -> str | None:
        entry = self.hosted[hosted_id]
        try:
            data = base64.b64decode(str(entry.get("base64") or ""), validate=True)
        except (binascii.Error, ValueError):
            return None
        placeholder = PLACEHOLDER_PREFIX + hosted_id
        content_type = str(entry.get("contentType") or "application/octet-stream")
        extension = content_type.rpartition("/")[2].split(";")[0].strip() or "bin"
        name = f"image-{len(self.media) + 1}.{extension}"
        self.media.setdefault(
            placeholder, {"content_type": content_type, "data": data, "name": name}
        )
        return placeholder

    def attachment(self, attachment_id: str) -> str | None:
        for attachment in self.message.get("attachments") or ():
            if str(attachment.get("id")) == attachment_id:
                self.used_attachments.add(attachment_id)
                return self.render_attachment(attachment)
        return None

    def render_attachment(self, attachment: Mapping[str, Any]) -> str:
        """The attachment's HTML; in a chat, the first quoted message becomes the reply
        (its quote kept aside as the fallback) and leaves the text."""
        quote = render_attachment(attachment, self.hosted, self.migrated)
        if self.quotes_reply and self.reply is None:
            quoted = quoted_message_id(attachment)
            if quoted:
                self.reply = (quoted, quote)
                return ""
        return quote

    def link(self, href: str) -> str:
        return self.migrated(href) or href

    def migrated(self, url: str) -> str | None:
        """The migrated file's web address; None when it has none a chat client can open
        (a file archive's `file://` path): then the original URL is kept."""
        found = migrated_url(url, self.context.links)
        return found if found and found.lower().startswith(("https://", "http://")) else None


def quoted_message_id(attachment: Mapping[str, Any]) -> str | None:
    """The id of the message a `messageReference` attachment quotes (its content's
    `messageId`, which Graph also gives as the attachment's id); None for anything else."""
    if attachment.get("contentType") != "messageReference":
        return None
    content = attachment.get("content")
    try:
        parsed = json.loads(content) if isinstance(content, str) else content
    except json.JSONDecodeError:
        parsed = None
    quoted = parsed.get("messageId") if isinstance(parsed, Mapping) else None
    return str(quoted or attachment.get("id") or "") or None


def migrated_url(url: str, links: Mapping[str, str]) -> str | None:
    """The migrated file's URL for a SharePoint/OneDrive URL, trying its usual spellings."""
    parts = urlsplit(url)
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    for candidate in (url, bare, unquote(url), unquote(bare), quote(unquote(bare), safe=":/")):
        if candidate in links:
            return links[candidate]
    return None


def _load(content: Any) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(message, hosted contents, whether it is a chat's message) of a fetched document."""
    if isinstance(content, bytes | bytearray):
        try:
            content = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SkipItem(f"chat content is not JSON: {error}") from error
    if not isinstance(content, dict) or not isinstance(content.get("message"), dict):
        raise SkipItem("chat content has no message")
    hosted = content.get("hostedContents") or {}
    in_chat = isinstance(content.get("chat"), dict)
    return content["message"], hosted if isinstance(hosted, dict) else {}, in_chat


def instant(value: Any) -> datetime:
    """A Graph DateTimeOffset ("2021-03-28T21:11:12.3950000Z") as an aware datetime."""
    if not isinstance(value, str) or not value:
        raise SkipItem(f"message has no valid date: {value!r}")
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value).replace("Z", "+00:00"))
    except ValueError as error:
        raise SkipItem(f"message has no valid date: {value!r}") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _author(message: Mapping[str, Any], context: ChatContext) -> tuple[str, str]:
    """(sender MXID, display name) of a message; system events speak as Teams."""
    sender = message.get("from") or {}
    for kind in ("user", "application", "device"):
        identity = sender.get(kind) if isinstance(sender, Mapping) else None
        if isinstance(identity, Mapping) and identity.get("id"):
            teams_id = str(identity["id"])
            name = identity.get("displayName") or context.names.get(teams_id) or "Unknown user"
            return matrix_user(teams_id, context), str(name)
    return puppet_id(SYSTEM_USER, context), SYSTEM_NAME


def _body(message: Mapping[str, Any], rendering: _Rendering) -> str:
    """The message's HTML: subject, body, then attachments the body did not place."""
    body = message.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "html").lower() == "text":
        markup = text_to_html(content)
    else:
        markup = teams_to_matrix(content, rendering.rewrites())
    subject = message.get("subject")
    if isinstance(subject, str) and subject.strip():
        markup = f"<p><strong>{escape(subject.strip())}</strong></p>{markup}"
    extra = "".join(
        rendering.render_attachment(attachment)
        for attachment in message.get("attachments") or ()
        if str(attachment.get("id")) not in rendering.used_attachments
    )
    return markup + sanitize(extra) if extra else markup


def _contents(
    item: Item,
    message: Mapping[str, Any],
    hosted: Mapping[str, Any],
    context: ChatContext,
    in_chat: bool,
) -> tuple[str, str, bool, _Rendering]:
    """(msgtype, HTML, edited, rendering) of the message's main text."""
    rendering = _Rendering(message, hosted, context, quotes_reply=in_chat)
    if message.get("deletedDateTime") or item.meta.get("deleted"):
        if context.deleted == "skip":  # a copy written earlier goes too
            raise GoneAtSource("the message was deleted in Teams")
        return "m.notice", escape(DELETED_TEXT), False, rendering
    if message.get("messageType") not in (None, "message") or message.get("eventDetail"):
        place = "chat" if in_chat else "team"
        sentence = system_sentence(message.get("eventDetail"), context.names, place)
        return "m.notice", escape(sentence), False, rendering
    markup = _body(message, rendering) or escape("(empty message)")
    edited = bool(message.get("lastEditedDateTime"))
    if edited:  # inside the last paragraph, so that the mark reads on the same line
        markup = _CLOSING_BLOCKS.sub(lambda m: f" <em>{EDITED_MARK}</em>{m.group(0)}", markup, 1)
    return "m.text", markup, edited, rendering


def _prefixed(markup: str, author: str, when: datetime) -> tuple[str, str]:
    """Bot mode: (HTML, body) starting with "<author> (<date time>):"."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    prefix = f"{author} ({stamp}):"
    text = html_to_text(markup)
    separator = "\n" if "\n" in text else " "
    return f"<p><strong>{escape(author)}</strong> ({stamp}):</p>{markup}", prefix + separator + text


def _message_events(
    source_id: str,
    msgtype: str,
    markup: str,
    body: str | None,
    relation: dict[str, Any] | None,
    reserve: int = 0,
) -> list[dict[str, Any]]:
    """The message as one event, or several when its JSON would pass the size limit
    (`reserve` bytes kept free in the first, for a reply's fallback quote)."""
    budget = MAX_CONTENT_BYTES // 2
    while True:
        chunks = split_html(markup, budget)
        events = []
        for index, chunk in enumerate(chunks):
            text = body if body is not None and len(chunks) == 1 else html_to_text(chunk)
            content: dict[str, Any] = {
                "msgtype": msgtype,
                "body": text,
                "format": "org.matrix.custom.html",
                "formatted_body": chunk,
                TEAMS_ID_KEY: source_id,
            }
            if relation is not None:
                content["m.relates_to"] = json.loads(json.dumps(relation))
            if index:
                content[PART_KEY] = index + 1
            events.append({"type": "m.room.message", "content": content})
        sizes = [_json_size(event["content"]) for event in events]
        sizes[0] += reserve
        if all(size <= MAX_CONTENT_BYTES for size in sizes):
            return events
        if budget < 2048:
            raise SkipItem("the message cannot be cut into events under the size limit")
        budget = budget * 3 // 4


def reply_fallback(quote: str) -> dict[str, str]:
    """What stands for the quoted message when it is not in the room: the quote's HTML
    and text, which the target puts in front of the message's own."""
    return {"formatted_body": quote, "body": html_to_text(quote)}


def without_reply(content: dict[str, Any], fallback: Mapping[str, str] | None) -> dict[str, Any]:
    """A chat message whose quoted message is not in the room: no reply relation, and
    the quote (`attrs["reply_fallback"]`) in front of its text. Other content unchanged."""
    relation = content.get("m.relates_to")
    reply = relation.get("m.in_reply_to") if isinstance(relation, dict) else None
    if not (isinstance(reply, dict) and reply.get("event_id") == "$REPLY"):
        return content
    content = {key: value for key, value in content.items() if key != "m.relates_to"}
    if fallback:
        content["formatted_body"] = fallback["formatted_body"] + str(
            content.get("formatted_body") or escape(str(content.get("body") or ""))
        )
        content["format"] = "org.matrix.custom.html"
        content["body"] = f"{fallback['body']}\n\n{content.get('body') or ''}".strip()
    return content


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def reaction_key(reaction: Mapping[str, Any]) -> str | None:
    """The emoji of a Teams reaction: the six classic names, else its own emoji or name."""
    kind = str(reaction.get("reactionType") or "").strip()
    if kind.lower() in REACTION_EMOJI:
        return REACTION_EMOJI[kind.lower()]
    if kind.lower() == "custom" or not kind:
        name = str(reaction.get("displayName") or "").strip()
        return f":{name}:" if name else None
    return kind


def _reaction_events(
    source_id: str, message: Mapping[str, Any], context: ChatContext
) -> list[dict[str, Any]]:
    """One `m.reaction` per (reacting user, emoji); per emoji in bot mode (one account)."""
    seen: set[tuple[str, str]] = set()
    events = []
    ordered = sorted(message.get("reactions") or (), key=lambda r: str(r.get("createdDateTime")))
    for reaction in ordered:
        key = reaction_key(reaction)
        user = ((reaction.get("user") or {}).get("user")) or {}
        if key is None:
            continue
        sender = matrix_user(str(user["id"]), context) if user.get("id") else ""
        identity = (sender if context.mode == "appservice" else "", key)
        if identity in seen:
            continue
        seen.add(identity)
        relates = {"rel_type": "m.annotation", "event_id": "$SELF", "key": key}
        event: dict[str, Any] = {
            "type": "m.reaction",
            "content": {"m.relates_to": relates, TEAMS_ID_KEY: source_id},
        }
        if context.mode == "appservice" and sender:
            event["sender"] = sender
            name = user.get("displayName") or context.names.get(str(user["id"]))
            event["sender_name"] = str(name or "")
            if reaction.get("createdDateTime"):
                event["ts"] = _millis(instant(reaction["createdDateTime"]))
        events.append(event)
    return events


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _changed_millis(message: Mapping[str, Any]) -> int | None:
    """When the message last changed in Teams (deleted, edited, or reacted to): the time
    of an edit the target writes for it; None when Graph says nothing."""
    for key in ("deletedDateTime", "lastEditedDateTime", "lastModifiedDateTime"):
        if message.get(key):
            return _millis(instant(message[key]))
    return None


def map_chat_message(item: Item, content: Any, context: ChatContext) -> Payload:
    """The Matrix events of one Teams message (see the module docstring).

    Raises `SkipItem` when the content is malformed, or `GoneAtSource` for a deleted
    message when `context.deleted == "skip"` (the engine removes a copy written earlier).
    """
    message, hosted, in_chat = _load(content)
    created = instant(message.get("createdDateTime") or item.meta.get("createdDateTime"))
    sender, author = _author(message, context)
    msgtype, markup, edited, rendering = _contents(item, message, hosted, context, in_chat)
    body: str | None = None
    if context.mode == "bot":
        markup, body = _prefixed(markup, author, created)
    root = item.meta.get("rootId") or message.get("replyToId")
    is_reply = "/" in item.source_id or bool(message.get("replyToId"))
    root_id = str(root or item.source_id.partition("/")[0]) if is_reply and not in_chat else None
    relation = None
    if root_id is not None:
        relation = {
            "rel_type": "m.thread",
            "event_id": "$ROOT",
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": "$ROOT"},
        }
    fallback = reply_fallback(rendering.reply[1]) if rendering.reply else None
    reserve = _json_size(fallback) if fallback else 0
    events = _message_events(item.source_id, msgtype, markup, body, relation, reserve)
    if rendering.reply:
        events[0]["content"]["m.relates_to"] = {"m.in_reply_to": {"event_id": "$REPLY"}}
    events[0]["content"]["m.mentions"] = {"user_ids": sorted(rendering.mentioned)}
    if msgtype == "m.text":
        events.extend(_reaction_events(item.source_id, message, context))
    media = [
        {"placeholder": placeholder, **entry}
        for placeholder, entry in rendering.media.items()
        if any(placeholder in e["content"].get("formatted_body", "") for e in events)
    ]
    attrs = {
        "sender": sender,
        "sender_name": author,
        "ts": _millis(created),
        "changed_ts": _changed_millis(message),
        "root": root_id,
        "reply_to": rendering.reply[0] if rendering.reply else None,
        "reply_fallback": fallback,
        "txn_id": txn_id(item.source_id),
        "media": media,
        "edited": edited,
    }
    document = json.dumps({"events": events}, ensure_ascii=False).encode("utf-8")
    return Payload(item.source_id, document, f"teams:{item.source_id}", attrs)
