"""The contacts mapper: Graph contacts to vCard 4.0 and 3.0, read back with vobject."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import vobject
from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mappings.contacts import contact_uid, map_contact, map_contact_v3
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Item, Payload

DATA = Path(__file__).parent / "data"
MAPPERS = {"4.0": map_contact, "3.0": map_contact_v3}


def document(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def mapped(doc: dict[str, Any], version: str = "4.0") -> tuple[Payload, Any]:
    contact = doc["contact"]
    payload = MAPPERS[version](Item(contact["id"], contact["changeKey"]), json.dumps(doc).encode())
    return payload, vobject.readOne(payload.content.decode("utf-8"))


def params(card: Any, name: str) -> dict[str, list[str]]:
    """value -> lower-cased TYPE list of every `name` line."""
    return {
        line.value: [t.lower() for t in line.params.get("TYPE", [])]
        for line in card.contents.get(name, [])
    }


@pytest.mark.parametrize("version", ["4.0", "3.0"])
def test_full_contact_round_trips(version: str) -> None:
    doc = document("contact_full.json")
    payload, card = mapped(doc, version)
    uid = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "hirondelle:contact:AAMkAGI2THk0AAA="))
    assert card.version.value == version
    assert card.uid.value == uid == contact_uid("AAMkAGI2THk0AAA=") == payload.attrs["uid"]
    assert payload.fingerprint == f"uid:{uid}"
    assert payload.attrs["resource"].endswith(".vcf") and len(payload.attrs["resource"]) == 44
    assert payload.attrs["content_type"] == "text/vcard; charset=utf-8"
    assert card.fn.value == "Élodie Dupont-Moreau"
    name = card.n.value
    assert (name.family, name.given, name.additional) == ("Dupont-Moreau", "Élodie", "Marie")
    assert (name.prefix, name.suffix) == ("Mme", "Jr.")
    assert card.org.value == ["Fabrikam; Fournitures, SARL", "Achats"]
    assert card.title.value == "Directrice des achats" and card.nickname.value == "Élo"
    assert card.note.value == doc["contact"]["personalNotes"]
    assert card.categories.value == ["Fournisseurs", "VIP"]
    assert card.url.value == "https://www.fabrikam.fr/"
    assert card.bday.value == ("19740722" if version == "4.0" else "1974-07-22")
    assert card.rev.value == ("20240115T103000Z" if version == "4.0" else "2024-01-15T10:30:00Z")


@pytest.mark.parametrize("version", ["4.0", "3.0"])
def test_emails_phones_and_addresses_are_typed(version: str) -> None:
    _payload, card = mapped(document("contact_full.json"), version)
    emails = params(card, "email")
    assert list(emails) == ["elodie.dupont@fabrikam.fr", "elodie.perso@example.org"]
    assert all("other" in types for types in emails.values())  # v1.0 addresses carry no type
    phones = params(card, "tel")
    assert phones == {
        "+33 1 40 20 30 40": ["work", "voice"],
        "+33 1 40 20 30 41": ["work", "voice"],
        "+33 1 45 67 89 10": ["home", "voice"],
        "+33 6 12 34 56 78": ["cell"],
    }
    addresses = {line.params["TYPE"][0].lower(): line.value for line in card.contents["adr"]}
    assert set(addresses) == {"home", "work"}  # the empty otherAddress is left out
    home = addresses["home"]
    assert (home.street, home.city, home.region) == (
        "12 rue de la Paix\nEscalier B",
        "Paris",
        "Île-de-France",
    )
    assert (home.code, home.country) == ("75002", "France")


def test_v4_photo_is_a_data_uri() -> None:
    doc = document("contact_full.json")
    payload, _card = mapped(doc, "4.0")
    lines = payload.content.decode().split("\r\n")
    (photo,) = [line for line in lines if line.startswith("PHOTO")]
    assert photo == "PHOTO:data:image/png;base64," + doc["photo"]


def test_v3_photo_round_trips_through_vobject() -> None:
    doc = document("contact_full.json")
    _payload, card = mapped(doc, "3.0")
    assert card.photo.value == base64.b64decode(doc["photo"])
    assert card.photo.params["ENCODING"] == ["b"] and card.photo.params["TYPE"] == ["PNG"]


def test_minimal_contact_is_named_after_its_address() -> None:
    _payload, card = mapped(document("contact_minimal.json"))
    assert card.fn.value == "support@contoso.com"
    assert "photo" not in card.contents and "bday" not in card.contents
    assert "note" not in card.contents and "tel" not in card.contents


@pytest.mark.parametrize("version", ["4.0", "3.0"])
def test_typed_beta_entries_keep_their_types(version: str) -> None:
    _payload, card = mapped(document("contact_beta_typed.json"), version)
    emails = params(card, "email")
    assert "work" in emails["isaiahl@contoso.com"]
    assert "home" in emails["isaiah@example.net"] and "other" in emails["ilanger@example.com"]
    phones = params(card, "tel")
    assert phones["+1 425 555 0101"] == ["work", "fax"] and phones["+1 425 555 0103"] == ["pager"]
    photo_type = "PHOTO:data:image/jpeg;base64," if version == "4.0" else "TYPE=JPEG"
    assert photo_type in _payload.content.decode()  # sniffed: no photoType given


def test_same_contact_gives_same_bytes_and_uid() -> None:
    doc = document("contact_full.json")
    first, _ = mapped(doc)
    second, _ = mapped(doc)
    assert first.content == second.content
    other = contact_uid("AAMkAGI2TWluAAA=")
    assert other != first.attrs["uid"] and other.startswith("urn:uuid:")


MALFORMED = {
    "not json": b"\xff\xfe",
    "no contact": b'{"photo": null}',
    "contact not an object": b'{"contact": []}',
    "photo not base64": b'{"contact": {"displayName": "X"}, "photo": "%%%"}',
    "photo not text": b'{"contact": {"displayName": "X"}, "photo": 12}',
    "bad birthday": b'{"contact": {"displayName": "X", "birthday": "22/07/1974"}}',
    "bad rev": b'{"contact": {"displayName": "X", "lastModifiedDateTime": "soon"}}',
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_content_is_skipped(content: bytes) -> None:
    with pytest.raises(SkipItem):
        map_contact(Item("AAMkA=", "ck"), content)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_damaged_field_gives_a_card_or_skip(data: st.DataObject) -> None:
    doc = document("contact_full.json")
    target = data.draw(st.sampled_from([doc, doc["contact"], doc["contact"]["homeAddress"]]))
    target[data.draw(st.sampled_from(sorted(target)))] = data.draw(JSON)
    for mapper in MAPPERS.values():
        try:
            payload = mapper(Item("AAMkAGI2THk0AAA=", "ck"), json.dumps(doc).encode())
        except SkipItem as error:
            assert str(error)
        else:
            assert vobject.readOne(payload.content.decode("utf-8")).fn.value
