"""The mail mapper, fed with Graph JSON shaped as a `$select` listing returns it and MIME."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mappings.mail import category_keyword, fingerprint_of, header_block, map_message
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Item

DATA = Path(__file__).parent / "data"

# RFC 3501 section 9: ATOM-CHAR is any CHAR except atom-specials.
ATOM = re.compile(r'^[^(){ %*"\\\]\x00-\x1f\x7f]+$')


def graph_messages(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))["value"]


def flattened(message: dict[str, Any]) -> dict[str, Any]:
    """The metadata as the Graph source flattens it into `Item.meta`."""
    verbs = [
        int(p["value"])
        for p in message.get("singleValueExtendedProperties", [])
        if p["id"] == "Integer 0x1081"
    ]
    return {
        "internetMessageId": message.get("internetMessageId"),
        "receivedDateTime": message.get("receivedDateTime"),
        "isRead": message.get("isRead"),
        "isDraft": message.get("isDraft"),
        "flagStatus": message.get("flag", {}).get("flagStatus"),
        "categories": message.get("categories", []),
        "lastVerb": verbs[0] if verbs else None,
        "size": None,
    }


def item_of(message: dict[str, Any], meta: dict[str, Any] | None = None) -> Item:
    return Item(message["id"], message["changeKey"], flattened(message) if meta is None else meta)


def eml(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_replied_flagged_message_with_categories() -> None:
    message = graph_messages("messages_inbox.json")[0]
    mime = eml("rfc2047_subject.eml")
    payload = map_message(item_of(message), mime)
    assert payload.content is mime
    assert payload.source_id == message["id"]
    assert payload.fingerprint == (
        "mid:PR3P195MB07451E2B4C9A3F1D@PR3P195MB0745.EURP195.PROD.OUTLOOK.COM"
    )
    assert payload.attrs["flags"] == (
        "\\Seen",
        "\\Flagged",
        "\\Answered",
        "Projet_X",
        "=C3=89quipe_Marketing",
    )
    assert payload.attrs["internal_date"] == datetime(2024, 3, 5, 9, 12, 44, tzinfo=UTC)
    assert payload.attrs["message_id"] == message["internetMessageId"]


def test_forwarded_unread_completed_message_with_8bit_body() -> None:
    message = graph_messages("messages_inbox.json")[1]
    mime = eml("eight_bit_body.eml")
    payload = map_message(item_of(message), mime)
    assert payload.attrs["flags"] == ("$Forwarded",)  # "complete" is not "\\Flagged"
    assert payload.fingerprint == "mid:CAF=8bit.x7Yq2Lw@mail.gmail.com"
    assert payload.fingerprint == fingerprint_of(mime)


def test_draft_without_message_id_uses_a_digest() -> None:
    message = graph_messages("messages_drafts.json")[0]
    mime = eml("draft_no_message_id.eml")
    payload = map_message(item_of(message), mime)
    assert payload.fingerprint == "sha256:" + hashlib.sha256(mime).hexdigest()
    assert payload.fingerprint == fingerprint_of(mime)
    assert payload.attrs["message_id"] is None
    assert payload.attrs["flags"] == ("\\Seen", "\\Draft", "R=C3=A9union_=28interne=29")
    assert payload.attrs["internal_date"] == datetime(2024, 3, 7, 10, 3, 19, tzinfo=UTC)


def test_raw_graph_shapes_give_the_same_flags() -> None:
    for message in graph_messages("messages_inbox.json"):
        flat = map_message(item_of(message), eml("eight_bit_body.eml"))
        raw = map_message(item_of(message, meta=message), eml("eight_bit_body.eml"))
        assert raw.attrs["flags"] == flat.attrs["flags"]


@pytest.mark.parametrize("verb", [102, 103, "103"])
def test_replies_are_answered(verb: object) -> None:
    payload = map_message(Item("id", "v", {"lastVerb": verb}), eml("draft_no_message_id.eml"))
    assert payload.attrs["flags"] == ("\\Answered",)


def test_header_message_id_wins_over_listed_one() -> None:
    # The fingerprint must be what a target recomputes from the stored bytes.
    mime = eml("eight_bit_body.eml")
    payload = map_message(Item("id", "v", {"internetMessageId": "<other@x>"}), mime)
    assert payload.fingerprint == fingerprint_of(mime) == "mid:CAF=8bit.x7Yq2Lw@mail.gmail.com"


def test_listed_message_id_fills_attribute_when_header_lacks_it() -> None:
    meta = {"internetMessageId": "<listed@x>"}
    payload = map_message(Item("id", "v", meta), eml("draft_no_message_id.eml"))
    assert payload.attrs["message_id"] == "<listed@x>"
    assert payload.fingerprint.startswith("sha256:")


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        (b"Message-ID: <a@b>\r\n\r\nbody", "mid:a@b"),
        (b"message-id:<a@b>\n\nbody", "mid:a@b"),
        (b"Message-ID:\r\n  <folded@b>\r\nSubject: x\r\n\r\n", "mid:folded@b"),
        (b"Message-ID: bare@b\r\n\r\n", "mid:bare@b"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@b>\r\n", None),
        (b"X-Message-ID: <not-it@b>\r\n\r\n", None),
        (b"Message-ID: <first@b>\r\nMessage-ID: <second@b>\r\n\r\n", "mid:first@b"),
        (b"Message-ID: <>\r\n\r\n", None),
    ],
)
def test_fingerprint_reads_only_the_header_block(mime: bytes, expected: str | None) -> None:
    digest = "sha256:" + hashlib.sha256(mime).hexdigest()
    assert fingerprint_of(mime) == (expected or digest)


@pytest.mark.parametrize(
    ("meta", "mime", "expected"),
    [
        ({"receivedDateTime": "2024-03-05T10:12:44+01:00"}, b"A: b\r\n\r\n", (2024, 3, 5, 9)),
        ({"receivedDateTime": "2024-03-05T09:12:44.1234567Z"}, b"A: b\r\n\r\n", (2024, 3, 5, 9)),
        (
            {"receivedDateTime": "garbage"},
            b"Date: Wed, 6 Mar 2024 18:40:00 +0100\r\n\r\n",
            (2024, 3, 6, 17),
        ),
        ({"receivedDateTime": 12}, b"Date: not a date\r\n\r\n", (1970, 1, 1, 0)),
        ({}, b"Date: Thu, 31 Feb 2024 99:99:99 +0000\r\n\r\n", (1970, 1, 1, 0)),
        ({}, b"Date: Wed, 6 Mar 2024 18:40:00 -0000\r\n\r\n", (2024, 3, 6, 18)),
    ],
)
def test_internal_date_fallbacks(
    meta: dict[str, Any], mime: bytes, expected: tuple[int, ...]
) -> None:
    moment = map_message(Item("id", "v", meta), mime).attrs["internal_date"]
    assert moment.tzinfo is not None
    assert moment.astimezone(UTC).timetuple()[:4] == expected


@pytest.mark.parametrize("mime", [b"", b"   \r\n", b"no header field at all\r\n\r\nbody"])
def test_content_that_is_not_a_message_is_skipped(mime: bytes) -> None:
    with pytest.raises(SkipItem):
        map_message(Item("id", "v", {}), mime)


meta_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.lists(st.text()),
    st.dictionaries(st.text(), st.text()),
)
meta_keys = st.sampled_from(
    [
        "internetMessageId",
        "receivedDateTime",
        "isRead",
        "isDraft",
        "flagStatus",
        "flag",
        "categories",
        "lastVerb",
        "size",
        "singleValueExtendedProperties",
    ]
)


@given(st.dictionaries(meta_keys, meta_values))
def test_malformed_meta_never_raises(meta: dict[str, Any]) -> None:
    payload = map_message(Item("id", "v", meta), eml("rfc2047_subject.eml"))
    assert all(
        isinstance(flag, str) and ATOM.match(flag.lstrip("\\")) for flag in payload.attrs["flags"]
    )
    assert payload.attrs["internal_date"].tzinfo is not None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_map_or_skip(mime: bytes) -> None:
    try:
        payload = map_message(Item("id", "v", {}), mime)
    except SkipItem:
        return
    assert payload.content is mime and payload.fingerprint == fingerprint_of(mime)


# -- category keywords -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "keyword"),
    [
        ("Projet X", "Projet_X"),
        ("\u00c9quipe", "=C3=89quipe"),
        ("a_b", "a=5Fb"),
        ("a=b", "a=3Db"),
        ("$Forwarded", "=24Forwarded"),
        ("US$", "US$"),
        ("\\Seen", "=5CSeen"),
        ("[x]", "=5Bx=5D"),
        ("\U0001f4bc", "=F0=9F=92=BC"),
    ],
)
def test_category_keywords(category: str, keyword: str) -> None:
    assert category_keyword(category) == keyword


@given(st.text(min_size=1))
def test_category_keyword_is_an_atom(category: str) -> None:
    keyword = category_keyword(category)
    assert keyword.isascii() and ATOM.match(keyword)
    assert "[" not in keyword and not keyword.startswith(("\\", "$"))


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_categories_stay_distinct(first: str, second: str) -> None:
    if first != second:
        assert category_keyword(first) != category_keyword(second)


def test_duplicate_and_empty_categories_are_dropped() -> None:
    meta = {"categories": ["Red", "", "Red", 7, "Blue"]}
    payload = map_message(Item("id", "v", meta), eml("draft_no_message_id.eml"))
    assert payload.attrs["flags"] == ("Red", "Blue")


def test_message_attrs_carries_flags_without_content() -> None:
    from hirondelle.mappings.mail import message_attrs

    item = Item("m1", "ck2", {"isRead": True, "flagStatus": "flagged", "categories": ["Rouge"]})
    payload = message_attrs(item)
    assert payload.content == b""
    assert payload.attrs["flags"][:2] == ("\\Seen", "\\Flagged")
    assert "Rouge" in payload.attrs["flags"]


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"A: 1", b" "])).map(b"".join))
def test_the_header_block_ends_at_the_first_empty_line_of_either_kind(mime: bytes) -> None:
    ends = [pos for pos in (mime.find(b"\r\n\r\n"), mime.find(b"\n\n")) if pos >= 0]
    assert header_block(mime) == (mime[: min(ends)] if ends else mime)
