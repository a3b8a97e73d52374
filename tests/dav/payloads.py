"""Small hand-written iCalendar and vCard payloads, shaped as the mappers hand them over."""

from __future__ import annotations

import hashlib
import uuid

from hirondelle.migrator.model import Payload

CALENDAR_TYPE = "text/calendar; charset=utf-8"
VCARD_TYPE = "text/vcard; charset=utf-8"

TIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
    "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nEND:DAYLIGHT\r\n"
    "END:VTIMEZONE\r\n"
)


def resource_name(source_id: str) -> str:
    """The mappers' resource base name: a stable 40-hex digest of the source id."""
    return hashlib.sha1(source_id.encode("utf-8")).hexdigest()


def event(
    source_id: str,
    summary: str = "Réunion d'équipe",
    uid: str | None = None,
    description: str = "Ordre du jour : budget été",
) -> Payload:
    """A one-event VCALENDAR with a VTIMEZONE, as the calendar mapper produces."""
    uid = uid or f"{source_id}@example.test"
    content = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Hirondelle//tests//EN\r\n"
        f"{TIMEZONE}"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20240101T090000Z\r\n"
        "DTSTART;TZID=Europe/Paris:20240612T100000\r\n"
        "DTEND;TZID=Europe/Paris:20240612T110000\r\n"
        f"SUMMARY:{summary}\r\nDESCRIPTION:{description}\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    ).encode()
    return Payload(
        source_id=source_id,
        content=content,
        fingerprint=f"uid:{uid}",
        attrs={
            "resource": f"{resource_name(source_id)}.ics",
            "uid": uid,
            "content_type": CALENDAR_TYPE,
        },
    )


def contact(source_id: str, name: str = "Émile Zola", uid: str | None = None) -> Payload:
    """A vCard 4.0, as the contacts mapper produces."""
    uid = uid or "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"hirondelle:contact:{source_id}")
    )
    content = (
        f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:{name}\r\n"
        "EMAIL;TYPE=work:emile@example.test\r\nTEL;TYPE=cell:+33 6 12 34 56 78\r\n"
        "END:VCARD\r\n"
    ).encode()
    return Payload(
        source_id=source_id,
        content=content,
        fingerprint=f"uid:{uid}",
        attrs={
            "resource": f"{resource_name(source_id)}.vcf",
            "uid": uid,
            "content_type": VCARD_TYPE,
        },
    )
