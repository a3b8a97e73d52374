"""Outlook rule conditions and exceptions (Graph's messageRulePredicates) as Sieve tests.

Pure. Every property of https://learn.microsoft.com/en-us/graph/api/resources/messagerulepredicates
has an entry in `PREDICATES`: a function returning a `Test`, `Unmapped` (Sieve cannot tell),
or None (the property is not in use: false, empty or absent). Within a property the values
are alternatives (any of the strings); the properties of one rule's conditions must all
hold; a rule does not apply when any of its exceptions holds.

Sieve compares with "i;ascii-casemap" (RFC 5228 section 2.7.3), which ignores the case of
ASCII letters only, while Outlook ignores case everywhere; Pigeonhole has no
"i;unicode-casemap" (RFC 5051). A string with non-ASCII letters is therefore also searched
as lower case, upper case and capitalised ("Réunion", "réunion", "RÉUNION").

Outlook stores several conditions as message properties that mail from the Internet only
carries as headers or MIME structure (importance, sensitivity, meeting requests,
reports, S/MIME); those tests read the headers RFC 2156 and RFC 4021 register
(Importance, X-Priority, Sensitivity) and the content types (RFC 5545 for iTIP methods,
RFC 6522 for reports, RFC 5751 for S/MIME, RFC 1847 for multipart/signed and
multipart/encrypted), with the "mime" extension of RFC 5703 where a part must be looked into.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .sieve_parts import Mailbox, Test, Unmapped, keywords, recipient_addresses, strings
from .sieve_text import quote, string_list

Result = Test | Unmapped | None

_HEADER_STRING = re.compile(r"^([!-9;-~]+):\s*(.*)$", re.DOTALL)  # RFC 5322 field-name


def case_variants(values: list[str]) -> list[str]:
    """`values` plus the lower, upper and capitalised forms of those with non-ASCII letters."""
    out: dict[str, None] = {}
    for value in values:
        out.setdefault(value, None)
        if any(not char.isascii() and char.lower() != char.upper() for char in value):
            for variant in (value.lower(), value.upper(), value[:1].upper() + value[1:].lower()):
                out.setdefault(variant, None)
    return list(out)


def _contains(header: str, values: list[str]) -> str:
    return f"header :contains {header} {string_list(case_variants(values))}"


def _body(values: list[str]) -> str:
    return f"body :text :contains {string_list(case_variants(values))}"


def _text_list(key: str) -> Callable[[Any, Mailbox], Result]:
    """A condition on strings found in the subject, the sender or the recipients."""
    headers = {
        "subjectContains": '"subject"',
        "senderContains": '"from"',
        "recipientContains": '["to", "cc"]',
    }[key]

    def test(value: Any, mailbox: Mailbox) -> Result:
        values = strings(value)
        return Test(_contains(headers, values)) if values else None

    return test


def _body_contains(value: Any, mailbox: Mailbox) -> Result:
    values = strings(value)
    return Test(_body(values), frozenset({"body"})) if values else None


def _body_or_subject(value: Any, mailbox: Mailbox) -> Result:
    values = strings(value)
    if not values:
        return None
    subject = _contains('"subject"', values)
    text = f"anyof ({subject}, {_body(values)})"
    return Test(text, frozenset({"body"}))


def _categories(value: Any, mailbox: Mailbox) -> Result:
    names = strings(value)
    if not names:
        return None
    flags, _too_long = keywords(value)  # a keyword too long is never set: not looked for
    header = _contains('"keywords"', names)
    text = f"anyof (hasflag {string_list(flags)}, {header})" if flags else header
    note = (
        "a message's categories are seen only as the keywords earlier rules of this script "
        "set or as a Keywords header"
    )
    return Test(text, frozenset({"imap4flags"} if flags else ()), note)


def _addresses(headers: str) -> Callable[[Any, Mailbox], Result]:
    def test(value: Any, mailbox: Mailbox) -> Result:
        addresses = recipient_addresses(value)
        return Test(f"address :is {headers} {string_list(addresses)}") if addresses else None

    return test


def _has_attachments(value: Any, mailbox: Mailbox) -> Result:
    if value is not True:
        return None
    text = 'header :mime :anychild :contains "Content-Disposition" "attachment"'
    note = "attachments are recognised by a MIME part with Content-Disposition: attachment"
    return Test(text, frozenset({"mime"}), note)


def _header_contains(value: Any, mailbox: Mailbox) -> Result:
    values = strings(value)
    if not values:
        return None
    tests: list[str] = []
    for item in values:
        match = _HEADER_STRING.match(item)
        if match is None or not match.group(2).strip():
            return Unmapped(
                f"header text {item!r} does not name a header field ('Name: words'): "
                "Sieve tests named header fields only"
            )
        tests.append(_contains(quote(match.group(1)), [match.group(2).strip()]))
    text = tests[0] if len(tests) == 1 else f"anyof ({', '.join(tests)})"
    note = "words in the message header are searched in the header field they name"
    return Test(text, note=note)


_PRIORITY = {
    "high": ('"high"', '["1*", "2*"]'),
    "low": ('"low"', '["4*", "5*"]'),
}


def _priority_test(level: str) -> str:
    importance, priority = _PRIORITY[level]
    return f'anyof (header :is "importance" {importance}, header :matches "x-priority" {priority})'


def _importance(value: Any, mailbox: Mailbox) -> Result:
    if value in _PRIORITY:
        return Test(_priority_test(value))
    if value == "normal":
        return Test(f"not anyof ({_priority_test('high')}, {_priority_test('low')})")
    return None if value in (None, "") else Unmapped(f"unknown importance {value!r}")


_SENSITIVITY = {
    "personal": "Personal",
    "private": "Private",
    "confidential": "Company-Confidential",
}


def _sensitivity(value: Any, mailbox: Mailbox) -> Result:
    if value in _SENSITIVITY:
        return Test(f'header :is "sensitivity" {quote(_SENSITIVITY[value])}')
    if value == "normal":
        return Test('anyof (not exists "sensitivity", header :is "sensitivity" "normal")')
    return None if value in (None, "") else Unmapped(f"unknown sensitivity {value!r}")


def _mime_kind(text: str, what: str) -> Callable[[Any, Mailbox], Result]:
    """A boolean condition recognised by the message's MIME structure."""

    def test(value: Any, mailbox: Mailbox) -> Result:
        if value is not True:
            return None
        return Test(text, frozenset({"mime"}), f"{what} are recognised by their MIME type")

    return test


def _report(kind: str) -> str:
    return (
        'allof (header :mime :contenttype "content-type" "multipart/report", '
        f'header :mime :param "report-type" "content-type" "{kind}")'
    )


def _itip(method: str) -> str:
    return (
        'allof (header :mime :anychild :contenttype "content-type" "text/calendar", '
        f'header :mime :anychild :param "method" "content-type" "{method}")'
    )


def _smime(multipart: str, smime_type: str) -> str:
    return (
        f'anyof (header :mime :contenttype "content-type" "multipart/{multipart}", '
        f'header :mime :param "smime-type" "content-type" "{smime_type}")'
    )


def _auto_reply(value: Any, mailbox: Mailbox) -> Result:
    if value is not True:
        return None
    note = "automatic replies are recognised by the Auto-Submitted header of RFC 3834"
    return Test('header :matches "auto-submitted" "auto-replied*"', note=note)


_NO_ADDRESS = Unmapped("the user's own address is not known")


def _me(headers: str, negate: bool = False) -> Callable[[Any, Mailbox], Result]:
    def test(value: Any, mailbox: Mailbox) -> Result:
        if value is not True:
            return None
        if not mailbox.addresses:
            return _NO_ADDRESS
        text = f"address :is {headers} {string_list(list(mailbox.addresses))}"
        return Test(("not " if negate else "") + text)

    return test


def _sent_only_to_me(value: Any, mailbox: Mailbox) -> Result:
    if value is not True:
        return None
    if not mailbox.addresses:
        return _NO_ADDRESS
    me = string_list(list(mailbox.addresses))
    text = (
        f'allof (address :is "to" {me}, '
        'address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] "1")'
    )
    return Test(text, frozenset({"relational", "comparator-i;ascii-numeric"}))


def _size_range(value: Any, mailbox: Mailbox) -> Result:
    if not isinstance(value, Mapping):
        return None
    tests = []
    low, high = value.get("minimumSize"), value.get("maximumSize")
    # sizes in kilobytes, both bounds included; Sieve's :over and :under are strict
    if isinstance(low, int) and low > 0:
        tests.append(f"size :over {low * 1024 - 1}")
    if isinstance(high, int) and high > 0:
        tests.append(f"size :under {high * 1024 + 1}")
    if not tests:
        return None
    return Test(tests[0] if len(tests) == 1 else f"allof ({', '.join(tests)})")


def _never(what: str) -> Callable[[Any, Mailbox], Result]:
    """A condition only Exchange knows (a message property with no header or MIME form)."""

    def test(value: Any, mailbox: Mailbox) -> Result:
        if value in (None, False, "", []):
            return None
        return Unmapped(f"{what}: Sieve cannot tell")

    return test


PREDICATES: Mapping[str, Callable[[Any, Mailbox], Result]] = {
    "bodyContains": _body_contains,
    "bodyOrSubjectContains": _body_or_subject,
    "categories": _categories,
    "fromAddresses": _addresses('"from"'),
    "hasAttachments": _has_attachments,
    "headerContains": _header_contains,
    "importance": _importance,
    "isApprovalRequest": _never("approval requests are an Exchange message class"),
    "isAutomaticForward": _never("automatic forwards are marked by Exchange only"),
    "isAutomaticReply": _auto_reply,
    "isEncrypted": _mime_kind(_smime("encrypted", "enveloped-data"), "encrypted messages"),
    "isMeetingRequest": _mime_kind(_itip("REQUEST"), "meeting requests"),
    "isMeetingResponse": _mime_kind(_itip("REPLY"), "meeting responses"),
    "isNonDeliveryReport": _mime_kind(_report("delivery-status"), "non-delivery reports"),
    "isPermissionControlled": _never("rights-protected (IRM) messages are an Exchange class"),
    "isReadReceipt": _mime_kind(_report("disposition-notification"), "read receipts"),
    "isSigned": _mime_kind(_smime("signed", "signed-data"), "signed messages"),
    "isVoicemail": _never("voice mail is an Exchange message class"),
    "messageActionFlag": _never("a follow-up flag on the incoming message is an Outlook property"),
    "notSentToMe": _me('["to", "cc"]', negate=True),
    "recipientContains": _text_list("recipientContains"),
    "senderContains": _text_list("senderContains"),
    "sensitivity": _sensitivity,
    "sentCcMe": _me('"cc"'),
    "sentOnlyToMe": _sent_only_to_me,
    "sentToAddresses": _addresses('["to", "cc"]'),
    "sentToMe": _me('"to"'),
    "sentToOrCcMe": _me('["to", "cc"]'),
    "subjectContains": _text_list("subjectContains"),
    "withinSizeRange": _size_range,
}


def predicate_tests(
    predicates: Any, mailbox: Mailbox
) -> tuple[list[tuple[str, Test]], list[tuple[str, Unmapped]]]:
    """The tests of a messageRulePredicates object, in property order, and what Sieve
    cannot carry (an unknown property included), each with its property name."""
    tests: list[tuple[str, Test]] = []
    unmapped: list[tuple[str, Unmapped]] = []
    if not isinstance(predicates, Mapping):
        return tests, unmapped
    for name in sorted(predicates):
        if name.startswith("@odata."):
            continue
        value = predicates[name]
        mapper = PREDICATES.get(name)
        result = mapper(value, mailbox) if mapper else _unknown(name, value)
        if result is None and isinstance(value, list) and value:
            # a list with nothing usable left: leaving it out would widen the rule
            result = Unmapped("holds no usable value")
        if isinstance(result, Test):
            missing = mailbox.lacks(result.requires)
            if missing:
                reason = f"the server has no Sieve extension {', '.join(missing)}"
                result = Unmapped(reason, result.text)
        if isinstance(result, Test):
            tests.append((name, result))
        elif isinstance(result, Unmapped):
            unmapped.append((name, result))
    return tests, unmapped


def _unknown(name: str, value: Any) -> Result:
    if value in (None, False, "", [], {}):
        return None
    return Unmapped("a condition this version does not know")
