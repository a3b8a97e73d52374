"""Deterministic RFC 5322 message building for the sandbox tenant.

A `MessageRecipe` is the small, immutable description of one synthetic message
(who, when, which kind of MIME, which attachments); `build_mime` turns it into a
`MimeDocument`, byte-identical on every call. The tenant keeps recipes, not
bytes: it builds a document once to learn its size, and again when the MIME is
served.

Binary attachments are `RepeatedBlock`s: a seeded block repeated up to the
attachment's length, base64-encoded on the fly. Their encoded size is known
arithmetically, so a 40 MiB attachment costs a few kilobytes of memory.

The text is written here rather than through `email.message.EmailMessage`: with
policy SMTP the stdlib spends about 1.4 ms per message on header objects, which
would make a 20,000-message tenant take half a minute to generate. Header
encoding still goes through the stdlib (`email.header`, `email.utils`), the
layout matches what `policy.SMTP` emits (CRLF, 8-bit UTF-8 text, base64 lines of
76 characters), and the tests parse every message back with the stdlib parser.
"""

from __future__ import annotations

import binascii
import html
import random
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr
from functools import cached_property, lru_cache
from typing import Literal

from .png import png

CRLF = "\r\n"
BASE64_LINE_BYTES = 57  # unencoded bytes per 76-character base64 line, as policy.SMTP writes
BLOCK_BYTES = BASE64_LINE_BYTES * 64  # repeated-block length: whole base64 lines only

Kind = Literal["plain", "alternative", "mixed", "related", "calendar"]
Address = tuple[str, str]  # (display name, address)


def base64_lines(content: bytes) -> bytes:
    """Encode `content` as base64 lines of 76 characters, each ending in CRLF."""
    step = BASE64_LINE_BYTES
    return b"".join(
        binascii.b2a_base64(content[i : i + step], newline=False) + b"\r\n"
        for i in range(0, len(content), step)
    )


def base64_size(length: int) -> int:
    """The size of `base64_lines` output for `length` input bytes, without encoding."""
    full, rest = divmod(length, BASE64_LINE_BYTES)
    return full * 78 + ((rest + 2) // 3 * 4 + 2 if rest else 0)


@dataclass(frozen=True)
class RepeatedBlock:
    """Attachment content that is `block` repeated up to `length` bytes, served base64-encoded."""

    block: bytes  # its length is a multiple of BASE64_LINE_BYTES
    length: int

    @cached_property
    def _encoded_block(self) -> bytes:
        return base64_lines(self.block)

    @property
    def encoded_size(self) -> int:
        return base64_size(self.length)

    def raw(self) -> bytes:
        """The decoded content (for tests and small attachments only)."""
        whole, rest = divmod(self.length, len(self.block))
        return self.block * whole + self.block[:rest]

    def encoded_chunks(self, chunk_size: int) -> Iterator[bytes]:
        """Yield the base64 text in pieces of roughly `chunk_size` bytes."""
        whole, rest = divmod(self.length, len(self.block))
        per_chunk = max(1, chunk_size // len(self._encoded_block))
        while whole > 0:
            count = min(per_chunk, whole)
            yield self._encoded_block * count
            whole -= count
        if rest:
            yield base64_lines(self.block[:rest])


Segment = bytes | RepeatedBlock


@dataclass(frozen=True)
class MimeDocument:
    """A message's bytes as literal segments and lazily encoded attachment blocks."""

    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        return sum(
            s.encoded_size if isinstance(s, RepeatedBlock) else len(s) for s in self.segments
        )

    @property
    def resident_bytes(self) -> int:
        """Memory the document holds (its literal segments), whatever its size on the wire."""
        return sum(len(s) for s in self.segments if isinstance(s, bytes))

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the message in pieces; attachment blocks are encoded as they are reached."""
        for segment in self.segments:
            if isinstance(segment, RepeatedBlock):
                yield from segment.encoded_chunks(chunk_size)
            else:
                for start in range(0, len(segment), chunk_size):
                    yield segment[start : start + chunk_size]

    def to_bytes(self) -> bytes:
        return b"".join(self.chunks())


@dataclass(frozen=True)
class AttachmentRecipe:
    filename: str
    content_type: str  # "application/pdf"
    length: int  # decoded bytes


@dataclass(frozen=True)
class MessageRecipe:
    """Everything needed to rebuild one synthetic message byte for byte."""

    seed: str  # the key of the message's own random stream (body text, boundaries, bytes)
    kind: Kind
    subject: str
    sender: Address
    to: tuple[Address, ...]
    date: datetime  # aware
    message_id: str | None  # "<...>"; None for drafts that have none
    body_bytes: int = 2000  # approximate size of the text body
    cc: tuple[Address, ...] = ()
    in_reply_to: str | None = None
    attachments: tuple[AttachmentRecipe, ...] = field(default=())

    def document(self) -> MimeDocument:
        return build_mime(self)


# --- content pools (fixed, so messages depend only on their recipe) ---------------------------

_SENTENCES = (
    "Merci pour votre retour rapide concernant le dossier.",
    "Comme convenu lors de la réunion de mardi, voici les éléments demandés.",
    "Pourriez-vous valider le budget prévisionnel avant la fin de la semaine\u00a0?",
    "L'équipe a terminé la première phase du déploiement à Montréal et à Genève.",
    "Je reste à votre disposition pour tout complément d'information.",
    "Les chiffres du trimestre dépassent nos prévisions de 12\u00a0% environ.",
    "Nous avons reçu la facture n° 2024-117, à régler sous trente jours.",
    "Le comité se réunira à nouveau le jeudi 14 à 9\u00a0h\u00a030 en salle Émeraude.",
    "Voici le compte rendu, n'hésitez pas à le compléter si j'ai oublié un point.",
    "La migration des boîtes aux lettres est prévue pour le week-end prochain.",
    "Bonne nouvelle\u00a0: le client a signé le devis, on démarre lundi\u00a0! 🎉",
    "Attention, le serveur de fichiers sera indisponible samedi matin.",
    "J'ai mis à jour la présentation avec les remarques de Françoise.",
    "Le prestataire propose une remise de 5\u00a0% si la commande part avant mars.",
    "Pensez à renseigner vos congés d'été dans l'outil avant le 30 avril.",
    "Les accès au nouvel espace partagé ont été ouverts à toute l'équipe.",
    "Ci-dessous un résumé des décisions prises et des actions à mener.",
    "Le café de la salle de pause est enfin réparé ☕, merci à Jérôme.",
)
FIRST_NAMES = (
    "Élodie", "François", "Chloé", "Jérôme", "Anaïs", "Loïc", "Hélène", "Benoît",
    "Maëlle", "Noël", "Cécile", "Grégoire", "Léa", "Mathéo", "Inès", "Raphaël",
)  # fmt: skip
LAST_NAMES = (
    "Dupont", "Lefèvre", "Martin", "Bernard", "Girard", "Moreau", "Rousseau", "Fournier",
    "Lambert", "Bonnet", "Faure", "André", "Mercier", "Chevalier", "Gauthier", "Perrin",
)  # fmt: skip
CONTACTS: tuple[Address, ...] = (
    ("Jürgen Müller", "j.mueller@fabrikam.test"),
    ("Sophie Lemaître", "sophie.lemaitre@example.fr"),
    ("Service Comptabilité", "compta@fournisseur.test"),
    ("Zoë Østergaard", "zoe@nordic.test"),
    ("Marc O'Neill", "marc.oneill@partner.test"),
)
SUBJECTS = (
    "Point hebdomadaire", "Budget prévisionnel 2024", "Relance : facture en attente",
    "Ordre du jour du comité", "Mise à jour du planning", "Accès à l'espace partagé",
    "Déménagement des bureaux", "Congés d'été", "Überprüfung der Verträge",
    "Résultats du trimestre 📈", "Question sur le devis", "Formation sécurité",
    "Nouvelle procédure d'achat", "Pot de départ de Cécile 🥂", "Réunion équipe – suivi",
)  # fmt: skip
CATEGORIES = ("Rouge", "Projet X", "Bleu", "Client important")
_POOL_RNG = random.Random("hirondelle-text-pool")
_PARAGRAPHS: tuple[str, ...] = tuple(
    textwrap.fill(" ".join(_POOL_RNG.sample(_SENTENCES, _POOL_RNG.randint(3, 7))), width=72)
    for _ in range(64)
)


def _paragraphs(rng: random.Random, target_bytes: int) -> list[str]:
    """Pick paragraphs from the pool until about `target_bytes` of text."""
    chosen: list[str] = []
    total = 0
    while total < target_bytes or not chosen:
        paragraph = _PARAGRAPHS[rng.randrange(len(_PARAGRAPHS))]
        chosen.append(paragraph)
        total += len(paragraph.encode()) + 2
    return chosen


# --- headers ----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)  # subjects and names repeat across messages: encode each once
def _unstructured(name: str, value: str) -> str:
    """One header line, RFC 2047-encoded and folded when `value` is not ASCII."""
    if value.isascii() and len(name) + len(value) < 76:
        return f"{name}: {value}{CRLF}"
    encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}{CRLF}"


def _addresses(name: str, addresses: Sequence[Address]) -> str:
    """An address-list header, one address per folded line."""
    return f"{name}: " + f",{CRLF} ".join(map(_address, addresses)) + CRLF


@lru_cache(maxsize=4096)
def _address(address: Address) -> str:
    """`Name <address>`, the name as folded RFC 2047 encoded words when it is not ASCII."""
    name, mailbox = address
    if name.isascii():
        return formataddr(address)
    words = Header(name, "utf-8", header_name="From").encode(linesep=CRLF)
    last_line = words.rsplit(CRLF, 1)[-1]
    separator = " " if len(last_line) + len(mailbox) + 4 <= 78 else f"{CRLF} "
    return f"{words}{separator}<{mailbox}>"


def _param(name: str, value: str) -> str:
    """A MIME parameter, RFC 2231-encoded when not ASCII."""
    if value.isascii():
        return f'{name}="{value}"'
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def _top_headers(recipe: MessageRecipe) -> str:
    lines = [
        f"Date: {format_datetime(recipe.date)}{CRLF}",
        _addresses("From", [recipe.sender]),
        _addresses("To", recipe.to),
    ]
    if recipe.cc:
        lines.append(_addresses("Cc", recipe.cc))
    lines.append(_unstructured("Subject", recipe.subject))
    if recipe.message_id is not None:
        lines.append(f"Message-ID: {recipe.message_id}{CRLF}")
    if recipe.in_reply_to is not None:
        lines.append(f"In-Reply-To: {recipe.in_reply_to}{CRLF}")
        lines.append(f"References: {recipe.in_reply_to}{CRLF}")
    lines.append(f"MIME-Version: 1.0{CRLF}")
    return "".join(lines)


# --- bodies -----------------------------------------------------------------------------------


class _Writer:
    """Accumulates text and attachment blocks into a `MimeDocument`."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._text: list[str] = []

    def text(self, value: str) -> None:
        self._text.append(value)

    def block(self, block: RepeatedBlock) -> None:
        self._flush()
        self._segments.append(block)

    def _flush(self) -> None:
        if self._text:
            self._segments.append("".join(self._text).encode("utf-8"))
            self._text = []

    def document(self) -> MimeDocument:
        self._flush()
        return MimeDocument(tuple(self._segments))


def _crlf(text: str) -> str:
    return text.replace("\n", CRLF)


def _text_part(writer: _Writer, subtype: str, body: str, extra: str = "") -> None:
    writer.text(
        f'Content-Type: text/{subtype}; charset="utf-8"{extra}{CRLF}'
        f"Content-Transfer-Encoding: 8bit{CRLF}{CRLF}{_crlf(body)}"
    )


def _plain_body(recipe: MessageRecipe, paragraphs: list[str]) -> str:
    greeting = f"Bonjour {recipe.to[0][0].split(' ')[0]}," if recipe.to else "Bonjour,"
    closing = f"Cordialement,\n{recipe.sender[0]}"
    return "\n\n".join([greeting, *paragraphs, closing]) + "\n"


def _html_body(plain: str, image_cid: str | None = None) -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>\n" for p in plain.strip().split("\n\n"))
    image = f'<p><img src="cid:{image_cid}" alt="logo" width="48" height="48"></p>\n'
    return (
        '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        f"</head>\n<body>\n{paragraphs}{image if image_cid else ''}</body>\n</html>\n"
    )


def _boundary(rng: random.Random) -> str:
    return f"_000_{rng.getrandbits(96):024X}_"


def _multipart(writer: _Writer, subtype: str, boundary: str, params: str = "") -> None:
    writer.text(f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"{params}{CRLF}')


def _alternative(writer: _Writer, rng: random.Random, plain: str, cid: str | None = None) -> None:
    boundary = _boundary(rng)
    _multipart(writer, "alternative", boundary)
    writer.text(f"{CRLF}--{boundary}{CRLF}")
    _text_part(writer, "plain", plain)
    writer.text(f"{CRLF}--{boundary}{CRLF}")
    _text_part(writer, "html", _html_body(plain, cid))
    writer.text(f"{CRLF}--{boundary}--{CRLF}")


_MAGIC = {
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "application/zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
}
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _attachment(writer: _Writer, rng: random.Random, attachment: AttachmentRecipe) -> None:
    magic = _MAGIC.get(attachment.content_type, _MAGIC["application/zip"])
    block = magic + rng.randbytes(BLOCK_BYTES - len(magic))
    name = attachment.filename
    writer.text(
        f"Content-Type: {attachment.content_type}; {_param('name', name)}{CRLF}"
        f"Content-Disposition: attachment; {_param('filename', name)}{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}"
    )
    writer.block(RepeatedBlock(block, attachment.length))


def _png(rng: random.Random, side: int = 48) -> bytes:
    """A small, valid PNG of seeded noise."""
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))
    return png(side, side, rows, 6)


def _calendar(recipe: MessageRecipe, rng: random.Random) -> str:
    start = recipe.date + timedelta(days=rng.randint(2, 20), hours=rng.randint(0, 6))
    stamp = "%Y%m%dT%H%M%SZ"
    summary = recipe.subject.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    lines = [
        "BEGIN:VCALENDAR",
        "METHOD:REQUEST",
        "PRODID:-//Hirondelle//Sandbox//FR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        f"UID:{rng.getrandbits(128):032x}@sandbox",
        f"DTSTAMP:{recipe.date.strftime(stamp)}",
        f"DTSTART:{start.strftime(stamp)}",
        f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}",
        f"SUMMARY:{summary}",
        "LOCATION:Salle Émeraude",
        f"ORGANIZER;CN={recipe.sender[0]}:mailto:{recipe.sender[1]}",
        *(
            f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN={name}:mailto:{addr}"
            for name, addr in recipe.to
        ),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold_ical(line) for line in lines)


def _fold_ical(line: str) -> str:
    """Fold an iCalendar content line at 75 octets without splitting a UTF-8 character."""
    encoded = line.encode("utf-8")
    pieces: list[bytes] = []
    while len(encoded) > 75:
        cut = 74 if pieces else 75
        while (encoded[cut] & 0xC0) == 0x80:  # do not cut inside a multi-byte character
            cut -= 1
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]
    pieces.append(encoded)
    return "\r\n ".join(p.decode("utf-8") for p in pieces) + CRLF


# --- message kinds ----------------------------------------------------------------------------


def build_mime(recipe: MessageRecipe) -> MimeDocument:
    """Build the message described by `recipe`; the same recipe always gives the same bytes."""
    rng = random.Random(recipe.seed)
    plain = _plain_body(recipe, _paragraphs(rng, recipe.body_bytes))
    writer = _Writer()
    writer.text(_top_headers(recipe))
    if recipe.kind == "plain":
        _text_part(writer, "plain", plain)
    elif recipe.kind == "alternative":
        _alternative(writer, rng, plain)
    elif recipe.kind == "mixed":
        _mixed(writer, rng, recipe, plain)
    elif recipe.kind == "related":
        _related(writer, rng, plain)
    else:
        _invitation(writer, rng, recipe, plain)
    return writer.document()


def _mixed(writer: _Writer, rng: random.Random, recipe: MessageRecipe, plain: str) -> None:
    boundary = _boundary(rng)
    _multipart(writer, "mixed", boundary)
    writer.text(f"{CRLF}--{boundary}{CRLF}")
    _alternative(writer, rng, plain)
    for attachment in recipe.attachments:
        writer.text(f"{CRLF}--{boundary}{CRLF}")
        _attachment(writer, rng, attachment)
    writer.text(f"{CRLF}--{boundary}--{CRLF}")


def _related(writer: _Writer, rng: random.Random, plain: str) -> None:
    boundary = _boundary(rng)
    cid = f"image001.png@01DA{rng.getrandbits(48):012X}"
    _multipart(writer, "related", boundary, params=f';{CRLF} type="multipart/alternative"')
    writer.text(f"{CRLF}--{boundary}{CRLF}")
    _alternative(writer, rng, plain, cid)
    image = base64_lines(_png(rng)).decode("ascii")
    writer.text(
        f"{CRLF}--{boundary}{CRLF}"
        f'Content-Type: image/png; name="image001.png"{CRLF}'
        f'Content-Disposition: inline; filename="image001.png"{CRLF}'
        f"Content-ID: <{cid}>{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{image}"
        f"{CRLF}--{boundary}--{CRLF}"
    )


def _invitation(writer: _Writer, rng: random.Random, recipe: MessageRecipe, plain: str) -> None:
    boundary = _boundary(rng)
    _multipart(writer, "alternative", boundary)
    writer.text(f"{CRLF}--{boundary}{CRLF}")
    _text_part(writer, "plain", plain)
    writer.text(f"{CRLF}--{boundary}{CRLF}")
    writer.text(
        f'Content-Type: text/calendar; charset="utf-8"; method=REQUEST{CRLF}'
        f"Content-Transfer-Encoding: 8bit{CRLF}{CRLF}{_calendar(recipe, rng)}"
    )
    writer.text(f"{CRLF}--{boundary}--{CRLF}")
