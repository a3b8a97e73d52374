"""The MIME building blocks: lazily encoded attachments and iCalendar folding."""

from __future__ import annotations

import base64
import email
import random
from datetime import UTC, datetime
from email import policy
from typing import Any

import pytest

from hirondelle.sandbox.mime import (
    BLOCK_BYTES,
    AttachmentRecipe,
    MessageRecipe,
    RepeatedBlock,
    base64_lines,
    base64_size,
)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 56, 57, 58, 114, BLOCK_BYTES, BLOCK_BYTES * 3 + 7])
def test_repeated_block_encodes_like_plain_base64(length: int) -> None:
    block = RepeatedBlock(random.Random(length).randbytes(BLOCK_BYTES), length)
    encoded = b"".join(block.encoded_chunks(5000))
    assert encoded == base64_lines(block.raw())
    assert len(encoded) == block.encoded_size == base64_size(length)
    assert base64.b64decode(encoded) == block.raw()
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))


def recipe(**changes: Any) -> MessageRecipe:
    fields: dict[str, Any] = {
        "seed": "test",
        "kind": "calendar",
        "subject": "Comité de pilotage, édition « spéciale » 🎉 avec un titre assez long",
        "sender": ("Élodie Dupont", "elodie@contoso.test"),
        "to": (("Zoë Østergaard-Lindqvist", "zoe.ostergaard-lindqvist@nordic.test"),),
        "date": datetime(2023, 6, 1, 8, 0, tzinfo=UTC),
        "message_id": "<cal@contoso.test>",
    }
    return MessageRecipe(**(fields | changes))


def test_calendar_lines_are_folded_at_75_octets() -> None:
    raw = recipe().document().to_bytes()
    calendar = raw.split(b"BEGIN:VCALENDAR")[1].split(b"END:VCALENDAR")[0]
    assert all(len(line) <= 75 for line in calendar.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=policy.default)
    part = next(p for p in parsed.walk() if p.get_content_subtype() == "calendar")
    unfolded = part.get_content().replace("\r\n ", "").replace("\n ", "")
    assert "ATTENDEE;ROLE=REQ-PARTICIPANT" in unfolded and "zoe.ostergaard-lindqvist" in unfolded


def test_non_ascii_attachment_names_survive() -> None:
    files = (AttachmentRecipe("Devis révisé.docx", "application/pdf", 2000),)
    raw = recipe(kind="mixed", attachments=files).document().to_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    (attachment,) = [p for p in parsed.walk() if p.is_attachment()]
    assert attachment.get_filename() == "Devis révisé.docx"
    assert attachment.get_content()[:4] == b"%PDF"


def test_long_subjects_are_encoded_and_folded() -> None:
    raw = recipe(kind="plain").document().to_bytes()
    head = raw.split(b"\r\n\r\n")[0]
    assert head.isascii() and all(len(line) <= 78 for line in head.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert str(parsed["Subject"]) == recipe().subject


def test_documents_are_rebuilt_identically() -> None:
    assert recipe().document() == recipe().document()
    assert recipe().document() != recipe(seed="other").document()
