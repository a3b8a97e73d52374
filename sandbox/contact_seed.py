"""Seeded contacts for the sandbox: their Graph JSON and their photos.

https://learn.microsoft.com/en-us/graph/api/resources/contact. Everything derives from
the random generator the caller seeds (`calendar_seed`): no wall clock, no global state.
"""

from __future__ import annotations

import random
import struct
from typing import Any

from .png import png
from .tenant_records import stable_id

JSON = dict[str, Any]


# --- contacts ----------------------------------------------------------------------------

_COMPANIES = (
    "Fabrikam",
    "Contoso Bâtiment",
    "Boulangerie Dupré",
    "Nordic Design AS",
    "Atelier Ünal",
)
_TITLES = ("Directrice commerciale", "Chef de projet", "Comptable", "Architecte", "Développeur")
_STREETS = ("12 rue de la Paix", "3 allée des Tilleuls", "45 avenue Jean-Jaurès", "Hauptstraße 7")
_CITIES = (("Paris", "75002"), ("Lyon", "69003"), ("Nantes", "44000"), ("Zürich", "8001"))


def contact_fields(rng: random.Random, given: str, surname: str, folder_id: str, n: int) -> JSON:
    """A contact's Graph JSON (https://learn.microsoft.com/en-us/graph/api/resources/contact)."""
    domain = _ascii(_COMPANIES[n % len(_COMPANIES)]).lower().replace(" ", "") + ".test"
    login = _ascii(f"{given}.{surname}").lower()
    emails = [{"name": f"{given} {surname}", "address": f"{login}@{domain}"}]
    if n % 2 == 0:
        emails.append({"name": f"{given} {surname}", "address": f"{login}@example.fr"})
    if n % 4 == 0:
        emails.append({"name": given, "address": f"{_ascii(given).lower()}{n}@perso.test"})
    phone = f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {n:02d}"
    city, postal = _CITIES[n % len(_CITIES)]
    address = {
        "street": _STREETS[n % len(_STREETS)],
        "city": city,
        "state": "",
        "countryOrRegion": "Suisse" if city == "Zürich" else "France",
        "postalCode": postal,
    }
    birthday = f"{1960 + n * 3 % 40}-{n % 12 + 1:02d}-{n % 27 + 1:02d}T11:59:00Z"
    return {
        "categories": ["Fournisseurs"]
        if n % 3 == 2
        else (["Client important"] if n % 5 == 0 else []),
        "parentFolderId": folder_id,
        "birthday": birthday if n % 3 != 1 else None,
        "fileAs": f"{surname}, {given}",
        "displayName": f"{given} {surname}",
        "givenName": given,
        "initials": f"{given[0]}.{surname[0]}.",
        "middleName": None,
        "nickName": "Lulu 🐱" if n == 1 else None,
        "surname": surname,
        "title": None,
        "yomiGivenName": None,
        "yomiSurname": None,
        "yomiCompanyName": None,
        "generation": None,
        "imAddresses": [f"sip:{login}@{domain}"] if n % 3 == 0 else [],
        "jobTitle": _TITLES[n % len(_TITLES)],
        "companyName": _COMPANIES[n % len(_COMPANIES)],
        "department": "Achats" if n % 2 else None,
        "officeLocation": None,
        "profession": None,
        "businessHomePage": f"https://www.{domain}/" if n % 2 == 0 else None,
        "assistantName": None,
        "manager": None,
        "homePhones": [phone.replace("+33 1", "+33 4")] if n % 2 == 0 else [],
        "mobilePhone": phone.replace("+33 1", "+33 6"),
        "businessPhones": [phone] + ([phone.replace(" 1 ", " 9 ")] if n % 3 == 0 else []),
        "spouseName": None,
        "personalNotes": "Préfère être contacté le matin ☀️" if n % 2 else "",
        "children": [],
        "emailAddresses": emails,
        "homeAddress": address if n % 2 == 0 else {},
        "businessAddress": address | {"street": f"ZI du Moulin, bât. {n + 1}"},
        "otherAddress": {},
    }


def _ascii(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in ".- "))


def contact_photo(contact_id: str, n: int) -> tuple[bytes | None, str | None]:
    """Every third contact has no photo; the others a tiny JPEG or PNG of their own."""
    if n % 3 == 1:
        return None, None
    if n % 3 == 0:
        return tiny_jpeg(contact_id), "image/jpeg"
    return tiny_png(contact_id), "image/png"


def tiny_png(seed: str) -> bytes:
    """An 8x8 PNG in a colour derived from `seed`."""
    colour = bytes(stable_id("", "png", seed).encode()[:3])
    rows = b"".join(b"\x00" + colour * 8 for _ in range(8))
    return png(8, 8, rows, 9)


def tiny_jpeg(seed: str) -> bytes:
    """An 8x8 grey baseline JPEG whose comment segment names `seed` (so each one differs).

    One-symbol Huffman tables: the single block's DC difference is 0 (mid grey) and its AC
    part is an immediate end-of-block, so the scan is one byte.
    """
    comment = f"hirondelle {seed}".encode()

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    one_code = bytes([1] + [0] * 15) + b"\x00"  # one code of length 1 for symbol 0
    return b"".join(
        (
            b"\xff\xd8",
            segment(0xFE, comment),
            segment(0xDB, b"\x00" + b"\x01" * 64),
            segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"),
            segment(0xC4, b"\x00" + one_code),
            segment(0xC4, b"\x10" + one_code),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x3f",
            b"\xff\xd9",
        )
    )
