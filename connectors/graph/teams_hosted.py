"""The inline images of a Teams message (channel or chat), read for its content.

A message body points at its images as `.../hostedContents/{id}/$value`; listing and getting
a hosted content give its id only, `$value` gives the bytes (and says no more of the type
than the bytes do): https://learn.microsoft.com/en-us/graph/api/chatmessagehostedcontent-get
Each read takes a slot of the source's tenant cap, then the container's own budget.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from ...migrator.errors import SkipItem
from .budget import MailboxBudget
from .client import GraphClient
from .errors import Call

_HOSTED = re.compile(r"hostedContents/([^/\"'\s?<>]+)/\$value")


async def hosted_contents(
    client: GraphClient,
    tenant: tuple[MailboxBudget, str],
    container_id: str,
    message: Mapping[str, Any],
    url_of: Callable[[str], str],
    call: Call,
) -> dict[str, dict[str, str]]:
    """The images the body points at, by hosted content id: their type and base64 bytes.
    An image that is gone is left out (the mapper keeps the message without it)."""
    budget, lane = tenant
    found: dict[str, dict[str, str]] = {}
    for hosted_id in hosted_ids(message):
        try:
            async with budget.slot(lane):
                data = await client.stream_bytes(url_of(hosted_id), container_id, call)
        except SkipItem:
            continue
        found[hosted_id] = {
            "contentType": sniff(data),
            "base64": base64.b64encode(data).decode("ascii"),
        }
    return found


def hosted_ids(message: Mapping[str, Any]) -> list[str]:
    """The hosted contents (inline images) the message's body points at, once each."""
    body = str((message.get("body") or {}).get("content") or "")
    return list(dict.fromkeys(unquote(m) for m in _HOSTED.findall(body)))


def sniff(data: bytes) -> str:
    """The image type from its first bytes."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
    )
    for magic, content_type in signatures:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
