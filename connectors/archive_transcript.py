"""The readable transcript of a chat archive's channel or chat: one standalone HTML page.

Built from the events file alone (`archive_chat`): messages oldest first, a channel's
replies indented under their root, reactions counted, edits applied, redacted messages
left out, archived images shown from `media/`. Message HTML is sanitized again with the
Matrix allow-list, and a Content-Security-Policy lets the page load nothing but its own
inline style and the archive's images: no script runs, nothing comes from the network
(https://www.w3.org/TR/CSP3/#directive-default-src).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..mappings.chat_html import escape, html_to_text, sanitize

MEDIA_DIR = "media"
ARCHIVE_MXC = "mxc://archive/"
# Inline style only, images from the archive's own files (`media/`, read as file: URLs when
# the page is opened from disk, same-origin when served), no script, frame, form or base.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' file:; "
    "base-uri 'none'; form-action 'none'"
)
QUOTE_CHARS = 200


def is_main(line: Mapping[str, Any]) -> bool:
    """The first event of a message (not a split continuation, reaction, edit or redaction)."""
    content = line.get("content") or {}
    relation = content.get("m.relates_to") or {}
    return (
        line.get("type") == "m.room.message"
        and int(line.get("part") or 1) == 1
        and relation.get("rel_type") != "m.replace"
    )


# -- the readable transcript ----------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; color: #222; }
article { border-top: 1px solid #ddd; padding: .6rem 0; }
.thread { margin-left: 2rem; border-left: 3px solid #cde; padding-left: 1rem; }
.thread article { border-top: none; }
header { font-size: .9rem; color: #555; }
.notice .body { color: #666; font-style: italic; }
.reactions span { background: #f1f3f5; border-radius: 1rem; padding: 0 .5rem; margin-right: .3rem; }
img { max-width: 100%; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; }
.members { color: #555; }
blockquote.reply { margin: 0 0 .3rem; padding-left: .6rem; border-left: 3px solid #ccc; }
"""


@dataclass
class _Message:
    line: dict[str, Any]
    content: dict[str, Any]
    parts: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[str, int] = field(default_factory=dict)
    replies: list[_Message] = field(default_factory=list)
    in_reply_to: str | None = None  # the event a chat message replies to


def render_transcript(
    title: str,
    lines: list[dict[str, Any]],
    media: Mapping[str, Path],
    members: Sequence[str] = (),
) -> str:
    """The channel or chat as a standalone HTML page: posts oldest first, a channel's
    replies indented, a chat's replies under a quote of the message they answer; a chat's
    `members` named under the title."""
    redacted = {str(line.get("redacts")) for line in lines if line["type"] == "m.room.redaction"}
    messages: dict[str, _Message] = {}
    by_teams_id: dict[str, _Message] = {}
    for line in lines:
        if is_main(line) and line["event_id"] not in redacted:
            message = _Message(line, line["content"])
            reply = (line["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {}
            if reply and not (line["content"].get("m.relates_to") or {}).get("rel_type"):
                message.in_reply_to = str(reply.get("event_id"))
            messages[line["event_id"]] = by_teams_id[str(line.get("teams_id"))] = message
    for line in lines:
        relation = line["content"].get("m.relates_to") or {}
        target = messages.get(str(relation.get("event_id")))
        if line["type"] == "m.reaction" and target is not None:
            key = str(relation.get("key"))
            target.reactions[key] = target.reactions.get(key, 0) + 1
        elif relation.get("rel_type") == "m.replace" and target is not None:
            target.content = line["content"].get("m.new_content") or target.content
        elif line["type"] == "m.room.message" and int(line.get("part") or 1) > 1:
            owner = by_teams_id.get(str(line.get("teams_id")))
            if owner is not None:
                owner.parts.append(line["content"])
    roots: list[_Message] = []
    orphans: dict[str, _Message] = {}
    for message in sorted(messages.values(), key=lambda m: m.line["origin_server_ts"]):
        relation = message.line["content"].get("m.relates_to") or {}
        if relation.get("rel_type") != "m.thread":
            roots.append(message)
            continue
        root_id = str(relation.get("event_id"))
        if root_id not in messages and root_id not in orphans:
            orphans[root_id] = _Message({"origin_server_ts": message.line["origin_server_ts"]}, {})
            roots.append(orphans[root_id])
        (messages.get(root_id) or orphans[root_id]).replies.append(message)
    body = "".join(_render(message, media, messages) for message in roots)
    named = ", ".join(members)
    header = f'<p class="members">Members: {escape(named)}</p>\n' if named else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{header}{body}</body></html>\n"
    )


def _quote(event_id: str, messages: Mapping[str, _Message]) -> str:
    """A short quote of the message a chat message replies to, linked to it."""
    quoted = messages.get(event_id)
    if quoted is None:
        missing = "In reply to a message no longer here"
        return f'<blockquote class="reply"><em>{missing}</em></blockquote>'
    author = escape(str(quoted.line.get("sender_name") or quoted.line.get("sender") or ""))
    text = html_to_text(sanitize(str(quoted.content.get("formatted_body") or ""))) or str(
        quoted.content.get("body") or ""
    )
    excerpt = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"
    return (
        f'<blockquote class="reply"><a href="#{escape(event_id)}">In reply to {author}</a>'
        f"<br>{escape(excerpt)}</blockquote>"
    )


def _render(message: _Message, media: Mapping[str, Path], messages: Mapping[str, _Message]) -> str:
    replies = "".join(_render(reply, media, messages) for reply in message.replies)
    thread = f'<section class="thread">{replies}</section>' if replies else ""
    if not message.content:
        missing = '<p class="notice"><em>Original post not archived</em></p>'
        return f"<article>{missing}{thread}</article>\n"
    line = message.line
    notice = " notice" if message.content.get("msgtype") == "m.notice" else ""
    when = datetime.fromtimestamp(line["origin_server_ts"] / 1000, UTC)
    reactions = "".join(
        f"<span>{escape(key)} {count}</span>" for key, count in message.reactions.items()
    )
    bodies = "".join(_body_html(content, media) for content in [message.content, *message.parts])
    if message.in_reply_to:
        bodies = _quote(message.in_reply_to, messages) + bodies
    return (
        f'<article class="message{notice}" id="{escape(line["event_id"])}"><header>'
        f"<strong>{escape(line.get('sender_name') or line.get('sender') or '')}</strong> "
        f'<time datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M} UTC</time></header>'
        f'<div class="body">{bodies}</div>'
        f"{f'<div class=reactions>{reactions}</div>' if reactions else ''}{thread}</article>\n"
    )


def _body_html(content: Mapping[str, Any], media: Mapping[str, Path]) -> str:
    """The event's HTML, sanitized again, with archived images pointing at media/."""
    if isinstance(content.get("formatted_body"), str):
        markup = sanitize(content["formatted_body"])
    else:
        markup = escape(str(content.get("body") or "")).replace("\n", "<br>")
    for name in media:
        markup = markup.replace(f'src="{ARCHIVE_MXC}{name}"', f'src="{MEDIA_DIR}/{escape(name)}"')
    return markup
