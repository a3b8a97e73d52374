"""The contacts mapper: a Graph contact (plus its photo) to a vCard, 4.0 or 3.0.

Pure: no network, no database, no file I/O. The content is the JSON document the Graph
contacts source fetches: {"contact": <contact JSON>, "photo": <base64 or null>,
"photoType": <content type or null>}. Properties follow the contact resource
(https://learn.microsoft.com/en-us/graph/api/resources/contact); the typed `phones` and
`emailAddresses[].type` of the beta resource are honoured when present.

vCard 4.0 (RFC 6350) is the default; `map_contact_v3` writes 3.0 (RFC 2426) for servers that
need it, and `map_contact_as` the version a CardDAV server's address books list. One known
vobject limit: its parser reads a 4.0 `PHOTO:data:...;base64,...` URI only up to the comma
(it treats PHOTO as text), so a server that re-serialises through vobject (Radicale)
truncates 4.0 photos; 3.0's `ENCODING=b` photo survives it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import vobject

from ..migrator.errors import SkipItem
from ..migrator.model import Item, Payload
from .calendar import resource_name

PRODID = "-//Hirondelle//EN"
CONTENT_TYPE = "text/vcard; charset=utf-8"

# Beta `phones[].type` -> vCard TEL types; v1.0 lists are mapped the same way below.
PHONE_TYPES = {
    "business": ["work", "voice"],
    "home": ["home", "voice"],
    "mobile": ["cell"],
    "businessFax": ["work", "fax"],
    "homeFax": ["home", "fax"],
    "otherFax": ["fax"],
    "pager": ["pager"],
    "other": ["voice"],
    "assistant": ["voice"],
    "radio": ["voice"],
}
EMAIL_TYPES = {"work": "work", "business": "work", "main": "work", "personal": "home"}
ADDRESS_TYPES = {"businessAddress": "work", "homeAddress": "home", "otherAddress": "other"}
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/bmp": "BMP"}
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"))


def contact_uid(source_id: str) -> str:
    """The vCard UID of a Graph contact: a name-based UUID, so reruns give the same UID."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "hirondelle:contact:" + source_id))


def map_contact(item: Item, content: bytes) -> Payload:
    """The vCard 4.0 payload of one contact. Raises `SkipItem` if the content is malformed."""
    return _payload(item, content, "4.0")


def map_contact_v3(item: Item, content: bytes) -> Payload:
    """The vCard 3.0 payload of one contact, for servers that do not take 4.0."""
    return _payload(item, content, "3.0")


def map_contact_as(version_of: Callable[[], str]) -> Callable[[Item, bytes], Payload]:
    """A mapper writing each contact in the version `version_of()` names at that moment
    (a CardDAV target learns it from the server's first address book)."""

    def mapper(item: Item, content: bytes) -> Payload:
        return _payload(item, content, version_of())

    return mapper


def _payload(item: Item, content: Any, version: str) -> Payload:
    contact, photo, photo_type = _load(content)
    uid = contact_uid(item.source_id)
    try:
        text = vcard(contact, uid, photo, photo_type, version)
    except (ValueError, TypeError, AttributeError) as error:
        raise SkipItem(f"malformed contact: {type(error).__name__}: {error}") from error
    attrs = {"resource": f"{resource_name(item.source_id)}.vcf", "uid": uid}
    attrs["content_type"] = CONTENT_TYPE
    return Payload(item.source_id, text.encode("utf-8"), f"uid:{uid}", attrs)


def _load(content: Any) -> tuple[Mapping[str, Any], bytes | None, str | None]:
    if not isinstance(content, bytes | bytearray | str):
        raise SkipItem("contact content is not JSON bytes")
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        raise SkipItem(f"contact content is not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("contact"), dict):
        raise SkipItem("contact content has no contact object")
    photo = document.get("photo")
    if photo is None or photo == "":
        return document["contact"], None, None
    if not isinstance(photo, str):
        raise SkipItem("contact photo is not base64 text")
    try:
        data = base64.b64decode(photo, validate=True)
    except (binascii.Error, ValueError) as error:
        raise SkipItem(f"contact photo is not valid base64: {error}") from error
    photo_type = document.get("photoType")
    return document["contact"], data, _image_type(data, photo_type)


def _image_type(data: bytes, declared: Any) -> str:
    if isinstance(declared, str) and declared.split(";")[0].strip().lower().startswith("image/"):
        return declared.split(";")[0].strip().lower()
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), "image/jpeg")


# -- the card ---------------------------------------------------------------------------------


def vcard(
    contact: Mapping[str, Any], uid: str, photo: bytes | None, photo_type: str | None, version: str
) -> str:
    """The serialised vCard (`version` "4.0" or "3.0") of a Graph contact JSON object."""
    card = vobject.vCard()
    card.add("version").value = version
    card.add("prodid").value = PRODID
    card.add("uid").value = uid
    card.add("fn").value = _formatted_name(contact)
    card.add("n").value = vobject.vcard.Name(
        family=_text(contact, "surname"),
        given=_text(contact, "givenName"),
        additional=_text(contact, "middleName"),
        prefix=_text(contact, "title"),
        suffix=_text(contact, "generation"),
    )
    _add_identity(card, contact, version)
    _add_emails(card, contact, version)
    _add_phones(card, contact, version)
    _add_addresses(card, contact, version)
    _add_dates(card, contact, version)
    if photo is not None:
        _add_photo(card, photo, photo_type or "image/jpeg", version)
    return str(card.serialize())


def _text(contact: Mapping[str, Any], field: str) -> str:
    value = contact.get(field)
    return value.strip() if isinstance(value, str) else ""


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def _formatted_name(contact: Mapping[str, Any]) -> str:
    """FN is required: the display name, else the parts of the name, company or address."""
    names = [_text(contact, f) for f in ("givenName", "middleName", "surname")]
    emails = [e for e in _email_entries(contact) if e[0]]
    return (
        _text(contact, "displayName")
        or " ".join(n for n in names if n)
        or _text(contact, "fileAs")
        or _text(contact, "companyName")
        or (emails[0][0] if emails else "")
        or "(no name)"
    )


def _kind(version: str, *types: str) -> list[str]:
    return [t.upper() if version == "3.0" else t for t in types]


def _add_identity(card: Any, contact: Mapping[str, Any], version: str) -> None:
    simple = {
        "nickname": "nickName",
        "title": "jobTitle",
        "role": "profession",
        "note": "personalNotes",
        "url": "businessHomePage",
    }
    for name, field in simple.items():
        if _text(contact, field):
            card.add(name).value = _text(contact, field)
    org = [_text(contact, "companyName"), _text(contact, "department")]
    if any(org):
        card.add("org").value = org if org[1] else org[:1]
    categories = _strings(contact.get("categories"))
    if categories:
        card.add("categories").value = categories
    for address in _strings(contact.get("imAddresses")):
        card.add("impp").value = address if ":" in address else f"sip:{address}"
    if version == "4.0" and _text(contact, "spouseName"):
        spouse = card.add("related")
        spouse.value = _text(contact, "spouseName")
        spouse.params["TYPE"] = ["spouse"]
        spouse.params["VALUE"] = ["text"]


def _email_entries(contact: Mapping[str, Any]) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for entry in contact.get("emailAddresses") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("address"), str):
            address = entry["address"].strip()
            if address:
                entries.append((address, EMAIL_TYPES.get(str(entry.get("type")), "other")))
    return entries


def _add_emails(card: Any, contact: Mapping[str, Any], version: str) -> None:
    """EMAIL per address; v1.0 gives no type (Outlook's Email1-3 are untyped): "other"."""
    for position, (address, kind) in enumerate(_email_entries(contact)):
        line = card.add("email")
        line.value = address
        types = _kind(version, "internet", kind) if version == "3.0" else [kind]
        if position == 0:
            types += _kind(version, "pref") if version == "3.0" else []
            if version == "4.0":
                line.params["PREF"] = ["1"]
        line.params["TYPE"] = types


def _phone_entries(contact: Mapping[str, Any]) -> list[tuple[str, str]]:
    entries = [(n, "business") for n in _strings(contact.get("businessPhones"))]
    entries += [(n, "home") for n in _strings(contact.get("homePhones"))]
    if _text(contact, "mobilePhone"):
        entries.append((_text(contact, "mobilePhone"), "mobile"))
    for phone in contact.get("phones") or []:
        if isinstance(phone, Mapping) and isinstance(phone.get("number"), str):
            entries.append((phone["number"].strip(), str(phone.get("type") or "other")))
    unique: list[tuple[str, str]] = []
    for entry in entries:
        if entry[0] and entry not in unique:
            unique.append(entry)
    return unique


def _add_phones(card: Any, contact: Mapping[str, Any], version: str) -> None:
    for number, kind in _phone_entries(contact):
        line = card.add("tel")
        line.value = number
        line.params["TYPE"] = _kind(version, *PHONE_TYPES.get(kind, ["voice"]))


def _add_addresses(card: Any, contact: Mapping[str, Any], version: str) -> None:
    for field, kind in ADDRESS_TYPES.items():
        address = contact.get(field)
        if not isinstance(address, Mapping):
            continue
        parts = {k: _text(address, k) for k in ("street", "city", "state", "postalCode")}
        parts["countryOrRegion"] = _text(address, "countryOrRegion")
        if not any(parts.values()):
            continue
        line = card.add("adr")
        line.value = vobject.vcard.Address(
            street=parts["street"],
            city=parts["city"],
            region=parts["state"],
            code=parts["postalCode"],
            country=parts["countryOrRegion"],
        )
        line.params["TYPE"] = _kind(version, kind)


def _add_dates(card: Any, contact: Mapping[str, Any], version: str) -> None:
    """BDAY from the birthday's calendar date (Graph stores it as a UTC timestamp) and REV."""
    birthday = _text(contact, "birthday")[:10]
    try:
        day = datetime.strptime(birthday, "%Y-%m-%d").date() if birthday else None
    except ValueError as error:
        raise SkipItem(f"contact birthday is not a date: {birthday!r}") from error
    if day is not None:
        card.add("bday").value = day.strftime("%Y%m%d" if version == "4.0" else "%Y-%m-%d")
    modified = _text(contact, "lastModifiedDateTime")
    if modified:
        try:
            moment = datetime.fromisoformat(modified)
        except ValueError as error:
            raise SkipItem(f"contact lastModifiedDateTime is malformed: {modified!r}") from error
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        pattern = "%Y%m%dT%H%M%SZ" if version == "4.0" else "%Y-%m-%dT%H:%M:%SZ"
        card.add("rev").value = moment.strftime(pattern)


def _add_photo(card: Any, photo: bytes, photo_type: str, version: str) -> None:
    """PHOTO as a data URI (4.0) or inline base64 with ENCODING=b (3.0)."""
    line = card.add("photo")
    if version == "4.0":
        line.value = f"data:{photo_type};base64,{base64.b64encode(photo).decode('ascii')}"
        line.encoded = True  # a URI value: no text escaping of its ';' and ','
        return
    line.value = photo
    line.encoding_param = "b"
    line.type_param = IMAGE_TYPES.get(photo_type, photo_type.rpartition("/")[2].upper())
