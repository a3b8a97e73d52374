"""Outlook item ids as Graph hands them out: immutable only when the request asks.

"Prefer: IdType="ImmutableId"" applies to the request that carries it; without it a
message's id is its default (REST) id, which changes when the message moves to
another folder. Either kind of id is accepted in a request's path, but an old
default id no longer finds a message that moved
(https://learn.microsoft.com/en-us/graph/outlook-immutable-id). Containers
(mailFolder, calendar, contactFolder) keep one id either way.

The sandbox's tenant keys messages by their immutable id; a default id here encodes
the immutable id and the folder the message was in when the id was handed out.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from hirondelle.sandbox.odata import preferences

DEFAULT_ID_PREFIX = "AAMkAGRlZmF1bHQ"  # the look of an Outlook default id ("AAMkAG...")


def wants_immutable(headers: Mapping[str, str]) -> bool:
    """Whether this request (and only this one) asked for immutable ids."""
    return preferences(headers.get("Prefer")).get("idtype", "").lower() == "immutableid"


def default_id(immutable_id: str, folder_id: str) -> str:
    """The id a request without the header gets for a message in `folder_id`."""
    raw = f"{immutable_id}\n{folder_id}".encode()
    return DEFAULT_ID_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def presented(immutable_id: str, folder_id: str, immutable: bool) -> str:
    """The id to show for a message, by what the request asked."""
    return immutable_id if immutable else default_id(immutable_id, folder_id)


def resolve(given: str) -> tuple[str, str | None]:
    """The immutable id behind `given`, and the folder a default id was issued in."""
    if not given.startswith(DEFAULT_ID_PREFIX):
        return given, None
    encoded = given[len(DEFAULT_ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return given, None
    immutable_id, _, folder_id = raw.partition("\n")
    return (immutable_id, folder_id) if folder_id else (given, None)
