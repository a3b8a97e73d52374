"""Folder names: modified UTF-7, special-use mapping, joining with a server delimiter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mappings.mail_folders import (
    FALLBACK_NAMES,
    MAX_SEGMENT_BYTES,
    SPECIAL_USE_ROLES,
    UNNAMED,
    clean_segment,
    delimiter_lookalike,
    escape_segment,
    imap_utf7_decode,
    imap_utf7_encode,
    join_folder,
    split_folder,
    target_folder,
)

# Vectors from RFC 3501 section 5.1.3 and from the test suites of imapclient, imap_tools,
# the molino codec and the Erlang imap_utf7 library.
VECTORS = [
    ("~peter/mail/\u65e5\u672c\u8a9e/\u53f0\u5317", "~peter/mail/&ZeVnLIqe-/&U,BTFw-"),  # RFC
    ("&", "&-"),
    ("Stuff & Things", "Stuff &- Things"),
    ("make && make install", "make &-&- make install"),
    ("Hello\xffworld", "Hello&AP8-world"),
    ("\xff\xfe\xfd\xfc", "&AP8A,gD9APw-"),
    ("Imap&\xffworld", "Imap&-&AP8-world"),
    ("\x00", "&AAA-"),
    ("hello, Jackie Chan \u4f60\u597d\uff0c\u6210\u9f99", "hello, Jackie Chan &T2BZff8MYhCfmQ-"),
    ("str \t\n\r\f\vwhitespace", "str &AAkACgANAAwACw-whitespace"),
    ("Bo\u00eete de r\u00e9ception", "Bo&AO4-te de r&AOk-ception"),
    ("\u0412\u0445\u043e\u0434\u044f\u0449\u0438\u0435", "&BBIERQQ+BDQETwRJBDgENQ-"),
    ("[Gmail]/\u0412\u0430\u0436\u043d\u043e\u0435", "[Gmail]/&BBIEMAQ2BD0EPgQ1-"),
    ("Test \u00dcbung Stra\u00dfe", "Test &ANw-bung Stra&AN8-e"),
    ("INBOX.\u65e5\u672c\u8a9e", "INBOX.&ZeVnLIqe-"),
    ("\U0001f4e7 Inbox", "&2D3c5w- Inbox"),  # astral plane: a UTF-16 surrogate pair
    ("", ""),
]


@pytest.mark.parametrize(("name", "encoded"), VECTORS)
def test_utf7_vectors(name: str, encoded: str) -> None:
    assert imap_utf7_encode(name) == encoded
    assert imap_utf7_decode(encoded) == name


def test_printable_ascii_stands_for_itself() -> None:
    for code in range(0x20, 0x7F):
        if chr(code) != "&":
            assert imap_utf7_encode(chr(code)) == chr(code)


def test_decoder_accepts_ampersand_inside_a_base64_run() -> None:
    # "\r&\n" encoded in one run by other encoders; not canonical, still valid UTF-16.
    assert imap_utf7_decode("&AA0AJgAK-") == "\r&\n"


@pytest.mark.parametrize("bad", ["&nichtbase64", "&A-", "&AAA", "&2D0-", "&AA!A-", "&AAAA-x&"])
def test_decoder_rejects_malformed_names(bad: str) -> None:
    with pytest.raises(ValueError):
        imap_utf7_decode(bad)


def test_encoder_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        imap_utf7_encode("a\ud800b")


@given(st.text())
def test_utf7_round_trip(name: str) -> None:
    encoded = imap_utf7_encode(name)
    assert encoded.isascii()
    assert all(c == "&" or "\x20" <= c <= "\x7e" for c in encoded)
    assert imap_utf7_decode(encoded) == name


@given(st.text(st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF), min_size=1))
def test_utf7_round_trip_astral(name: str) -> None:
    encoded = imap_utf7_encode(name)
    assert "/" not in encoded  # "," replaces "/" in modified base64
    assert imap_utf7_decode(encoded) == name


# -- target_folder ---------------------------------------------------------------------------


def test_inbox_children_keep_inbox_prefix() -> None:
    path = ("Bo\u00eete de r\u00e9ception", "Projets", "2024/2025")
    assert target_folder(path, ("inbox", None, None), {}) == ("INBOX", "Projets", "2024/2025")


def test_characters_some_server_refuses_are_replaced_in_the_strict_form_only() -> None:
    # Cyrus IMAP 3.6 answers CREATE "a?b" with "Invalid mailbox name" for each of these
    # (tests/conformance runs the names against it); Dovecot's Maildir++ refuses ".".
    refused = '"%/;<>\\`{|}.'
    cleaned = clean_segment("a" + refused + "b", strict=True)
    assert not set(refused) & set(cleaned)
    assert cleaned == "a\uff02\uff05\u2215\uff1b\uff1c\uff1e\u29f5\uff40\uff5b\uff5c\uff5d\u2024b"
    # the plain form keeps the names earlier versions gave: an upgrade splits no folder
    assert clean_segment("a" + refused + "b") == 'a"\uff05/;<>\\`{|}\u2024b'


def test_special_use_maps_to_server_folder() -> None:
    special = {"\\Sent": "\u00c9l\u00e9ments envoy\u00e9s"}
    got = target_folder(("Sent Items", "Clients"), ("sentitems", None), special)
    assert got == ("\u00c9l\u00e9ments envoy\u00e9s", "Clients")


@pytest.mark.parametrize("role", sorted(SPECIAL_USE_ROLES))
def test_special_use_falls_back_to_standard_names(role: str) -> None:
    expected = FALLBACK_NAMES[SPECIAL_USE_ROLES[role]]
    assert target_folder(("Localised name",), (role,), {}) == (expected,)


def test_hierarchical_special_use_name_is_split_with_delimiter() -> None:
    special = {"\\Trash": "INBOX.Trash"}
    assert target_folder(("Deleted",), ("deleteditems",), special, ".") == ("INBOX", "Trash")
    assert target_folder(("Deleted",), ("deleteditems",), special) == ("INBOX.Trash",)


def test_plain_folders_keep_their_names_and_missing_roles_count_as_none() -> None:
    assert target_folder(("Clients", "ACME"), (), {}) == ("Clients", "ACME")


def test_names_are_nfc_normalised() -> None:
    decomposed = "Re\u0301unions"
    assert target_folder((decomposed,), (None,), {}) == ("R\u00e9unions",)


def test_top_level_folder_named_inbox_does_not_merge_with_inbox() -> None:
    assert target_folder(("Inbox",), (None,), {}) == ("Inbox_",)
    assert target_folder(("Projets", "Inbox"), (None, None), {}) == ("Projets", "Inbox")


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("", UNNAMED),
        ("   ", UNNAMED),
        ("\t\n", UNNAMED),
        (".", "\u2024"),
        ("..", "\u2024\u2024"),
        ("v1.2", "v1\u20242"),
        (".hidden", "\u2024hidden"),
        ("~home", "\uff5ehome"),
        ("a~b", "a~b"),
        ("50% *urgent*", "50\uff05 \u2217urgent\u2217"),
        ("tab\there", "tab here"),
        ("  padded  ", "padded"),
    ],
)
def test_names_servers_refuse_are_replaced(name: str, cleaned: str) -> None:
    assert clean_segment(name) == cleaned


def test_long_names_are_cut_with_a_digest_and_stay_distinct() -> None:
    first = clean_segment("\u00e9" * 200 + "A")
    second = clean_segment("\u00e9" * 200 + "B")
    assert first != second
    assert len(imap_utf7_encode(first)) <= MAX_SEGMENT_BYTES
    assert clean_segment("\u00e9" * 200 + "A") == first  # deterministic


@given(st.text())
def test_clean_segment_is_always_acceptable(name: str) -> None:
    cleaned = clean_segment(name)
    assert cleaned and cleaned == cleaned.strip()
    assert not any(c in cleaned for c in ".*%") and not cleaned.startswith("~")
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in cleaned)
    assert len(imap_utf7_encode(cleaned)) <= MAX_SEGMENT_BYTES


def test_empty_path_is_inbox() -> None:
    assert target_folder((), (), {}) == ("INBOX",)


# -- join / split ----------------------------------------------------------------------------


def test_join_replaces_delimiter_inside_a_segment() -> None:
    assert join_folder(("INBOX", "Projets", "2024/2025"), "/") == "INBOX/Projets/2024\u22152025"
    assert join_folder(("INBOX", "v1.2"), ".") == "INBOX.v1\u20242"
    assert split_folder("INBOX/Projets/2024\u22152025", "/") == (
        "INBOX",
        "Projets",
        "2024\u22152025",
    )


def test_lookalikes() -> None:
    assert delimiter_lookalike("/") == "\u2215"
    assert delimiter_lookalike(".") == "\u2024"
    assert delimiter_lookalike(":") == "\uff1a"
    with pytest.raises(ValueError):
        delimiter_lookalike("//")


delimiters = st.sampled_from(["/", ".", "\\", ":", "|"])
segment_lists = st.lists(st.text(), min_size=1, max_size=5).map(tuple)


@given(segment_lists, delimiters)
def test_join_then_split_keeps_levels(segments: tuple[str, ...], delimiter: str) -> None:
    joined = join_folder(segments, delimiter)
    split = split_folder(joined, delimiter)
    assert split == tuple(escape_segment(s, delimiter) for s in segments)
    assert len(split) == len(segments)
    assert all(split)


@given(st.text(), st.text(), delimiters)
def test_distinct_siblings_stay_distinct(first: str, second: str, delimiter: str) -> None:
    lookalike = delimiter_lookalike(delimiter)

    def same_after_replacement(name: str) -> str:
        return name.replace(delimiter, lookalike) or UNNAMED

    if same_after_replacement(first) != same_after_replacement(second):
        assert join_folder(("P", first), delimiter) != join_folder(("P", second), delimiter)
