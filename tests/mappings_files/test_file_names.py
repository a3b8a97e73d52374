"""Target naming rules: presets, Nextcloud capabilities, and properties of `target_path`.

The properties are checked against a rule checker written here from the servers' own
rules (not with the module's `acceptable`), so a wrong rule in the module shows up.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hirondelle.mappings.file_names import (
    GENERIC,
    LOCAL,
    NEXTCLOUD,
    TWAKE_DRIVE,
    WINDOWS,
    NameRules,
    rules_from_nextcloud_capabilities,
    target_name,
    target_path,
)

PRESETS = [LOCAL, GENERIC, NEXTCLOUD, TWAKE_DRIVE, WINDOWS]

# The `files` capability of a Nextcloud 30 with its defaults, as `apps/files/lib/
# Capabilities.php` builds it, inside the OCS envelope of `/ocs/v2.php/cloud/capabilities`.
NEXTCLOUD_30 = {
    "ocs": {
        "meta": {"status": "ok", "statuscode": 200, "message": "OK"},
        "data": {
            "version": {"major": 30, "minor": 0, "micro": 4, "string": "30.0.4"},
            "capabilities": {
                "files": {
                    "$comment": '"blacklisted_files" is deprecated as of Nextcloud 30, use '
                    '"forbidden_filenames" instead',
                    "blacklisted_files": [".htaccess"],
                    "forbidden_filenames": [".htaccess"],
                    "forbidden_filename_basenames": [],
                    "forbidden_filename_characters": ["\\", "/"],
                    "forbidden_filename_extensions": [".filepart", ".part"],
                    "bigfilechunking": True,
                    "chunked_upload": {"max_size": 104857600, "max_parallel_count": 5},
                }
            },
        },
    }
}

# The same server after `occ files:windows-compatible-filenames --enable`: the lists of
# `apps/files/lib/Service/SettingsService.php` merged into the configuration.
WINDOWS_BASENAMES = ["con", "prn", "aux", "nul"] + [
    f"{p}{n}" for p in ("com", "lpt") for n in "0123456789\u00b9\u00b2\u00b3"
]
NEXTCLOUD_WINDOWS_FILES = {
    "forbidden_filenames": [".htaccess"],
    "forbidden_filename_basenames": WINDOWS_BASENAMES,
    "forbidden_filename_characters": ["<", ">", ":", '"', "|", "?", "*", "\\", "/"],
    "forbidden_filename_extensions": [" ", ".", ".filepart", ".part"],
}


# -- an independent checker of the rules -------------------------------------------------------


def units(text: str, rules: NameRules) -> int:
    if rules.unit == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text.encode("utf-8"))


def obeys(name: str, rules: NameRules) -> bool:
    lowered = name.lower()
    basename = lowered if lowered.find(".", 1) < 0 else lowered[: lowered.find(".", 1)]
    return (
        name not in ("", ".", "..")
        and unicodedata.is_normalized("NFC", name)
        and "/" not in name
        and "\0" not in name
        and not any(c in rules.forbidden_chars for c in name)
        and not any(s in name for s in rules.forbidden_substrings)
        and not (rules.forbid_controls and any(ord(c) < 32 for c in name))
        and lowered not in rules.forbidden_names
        and basename not in rules.forbidden_basenames
        and not any(lowered.endswith(s) for s in rules.forbidden_suffixes)
        and units(name, rules) <= rules.max_name
    )


# -- presets, by example -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected_start", "kept_extension"),
    [
        ("CON", "CON~", ""),
        ("con.txt", "con~", ".txt"),
        ("NUL.tar.gz", "NUL~", ".tar.gz"),
        ("COM\u00b9.log", "COM\u00b9~", ".log"),
        ("Plan: v2?.docx", "Plan_ v2_~", ".docx"),
        ("notes. . ", "notes~", ""),
        ("a<b>c|d*e.xlsx", "a_b_c_d_e~", ".xlsx"),
    ],
)
def test_windows_renames_reserved_names_and_characters(
    source: str, expected_start: str, kept_extension: str
) -> None:
    name = target_name(source, WINDOWS)
    assert name.startswith(expected_start)
    assert name.endswith(kept_extension)
    assert obeys(name, WINDOWS)


def test_windows_keeps_names_that_only_look_reserved() -> None:
    for name in ("CONSOLE.txt", "com10", "lpt", "nul_file", ".con"):
        assert target_name(name, WINDOWS) == name


def test_windows_counts_utf16_units_not_bytes() -> None:
    # 200 "é" are 400 UTF-8 bytes but 200 UTF-16 units: fine on NTFS, too long elsewhere.
    name = "\u00e9" * 200
    assert target_name(name, WINDOWS) == name
    assert target_name(name, LOCAL) != name
    # 128 emoji are 256 UTF-16 units (surrogate pairs): one too many for NTFS.
    emoji = "\U0001f600" * 128
    shortened = target_name(emoji, WINDOWS)
    assert shortened != emoji and units(shortened, WINDOWS) <= 255


def test_nextcloud_defaults() -> None:
    assert target_name(".htaccess", NEXTCLOUD).startswith(".htaccess~")
    assert target_name(".HTACCESS", NEXTCLOUD).startswith(".HTACCESS~")  # compared lowercase
    part = target_name("film.mkv.part", NEXTCLOUD)
    assert part.startswith("film.mkv.part~") and obeys(part, NEXTCLOUD)
    assert target_name("a\\b.txt", NEXTCLOUD).startswith("a_b~")
    assert target_name("Réunion: compte-rendu?.docx", NEXTCLOUD) == "Réunion: compte-rendu?.docx"
    assert target_name("x" * 250, NEXTCLOUD) == "x" * 250
    assert len(target_name("x" * 251, NEXTCLOUD).encode()) == 250


def test_twake_drive_and_local_and_generic() -> None:
    assert target_name("line\nbreak", TWAKE_DRIVE).startswith("line_break~")
    assert target_name("tab\tkept", TWAKE_DRIVE) == "tab\tkept"  # cozy forbids \n \r only
    assert target_name("a\\b:c?*", LOCAL) == "a\\b:c?*"
    assert target_name("bell\x07", LOCAL) == "bell\x07"  # Linux takes it
    assert target_name("bell\x07", GENERIC).startswith("bell_~")  # XML 1.0 cannot carry it


@pytest.mark.parametrize("reserved", ["", ".", ".."])
def test_never_an_empty_or_dot_segment(reserved: str) -> None:
    for rules in PRESETS:
        name = target_name(reserved, rules)
        assert name not in ("", ".", "..") and obeys(name, rules)


def test_renamed_names_keep_their_extension() -> None:
    mapped = target_path("Projets/Budget | 2024.xlsx", WINDOWS)
    assert mapped.path.startswith("Projets/Budget _ 2024~")
    assert mapped.path.endswith(".xlsx")
    assert mapped.renamed == [("Projets/Budget | 2024.xlsx", mapped.path)]


def test_renamed_folder_is_reported_at_its_own_level() -> None:
    mapped = target_path("A: B/sub/c?.txt", WINDOWS)
    folder = mapped.path.split("/")[0]
    assert [s for s, _ in mapped.renamed] == ["A: B", "A: B/sub/c?.txt"]
    assert mapped.renamed[0] == ("A: B", folder)


def test_suffix_comes_from_the_source_path_so_same_names_in_two_folders_differ() -> None:
    one = target_path("a/x?.txt", WINDOWS).path.split("/")[-1]
    two = target_path("b/x?.txt", WINDOWS).path.split("/")[-1]
    assert one != two


def test_nfc_normalisation_is_reported_only_on_byte_sensitive_targets() -> None:
    decomposed = "Cafe\u0301/menu.txt"
    composed = "Caf\u00e9/menu.txt"
    local = target_path(decomposed, LOCAL)
    nextcloud = target_path(decomposed, NEXTCLOUD)
    assert local.path == nextcloud.path == composed  # no digest suffix for NFC alone
    assert local.renamed == [("Cafe\u0301", "Caf\u00e9")]
    assert nextcloud.renamed == []


def test_too_long_path_is_refused() -> None:
    deep = "/".join(["dossier"] * 600)
    mapped = target_path(deep, NEXTCLOUD)
    assert mapped.refused is not None and "3994" in mapped.refused
    assert target_path("/".join(["d"] * 511), TWAKE_DRIVE).refused is None
    assert "512 levels" in (target_path("/".join(["d"] * 512), TWAKE_DRIVE).refused or "")
    assert target_path("a/b", WINDOWS).refused is None


def test_under_a_root_leaves_less_path() -> None:
    rules = WINDOWS.under("C:\\Users\\alice\\Nextcloud")
    assert rules.max_path == 259 - len("C:\\Users\\alice\\Nextcloud") - 1
    assert target_path("x" * 240, rules).refused is not None
    assert target_path("x" * 240, WINDOWS).refused is None


def test_a_forbidden_separator_is_avoided() -> None:
    tilde_forbidden = dataclasses.replace(NEXTCLOUD, forbidden_chars=frozenset("\\/~"))
    name = target_name("a~b?", tilde_forbidden)
    assert "~" not in name and obeys(name, tilde_forbidden)


# -- Nextcloud capabilities --------------------------------------------------------------------


def test_capabilities_of_a_default_nextcloud_30() -> None:
    rules = rules_from_nextcloud_capabilities(json.dumps(NEXTCLOUD_30))
    assert rules.forbidden_names == {".htaccess"}
    assert {"\\", "/"} <= rules.forbidden_chars
    assert set(rules.forbidden_suffixes) == {".filepart", ".part"}
    assert rules.max_name == 250
    assert target_name("a:b", rules) == "a:b"


def test_capabilities_of_a_windows_compatible_nextcloud() -> None:
    rules = rules_from_nextcloud_capabilities({"files": NEXTCLOUD_WINDOWS_FILES})
    for source in ("CON.txt", "a:b", "trailing.", "trailing "):
        name = target_name(source, rules)
        assert name != source and obeys(name, rules)
        assert obeys(name, WINDOWS)


def test_capabilities_of_an_older_nextcloud_use_blacklisted_files() -> None:
    older = {
        "capabilities": {"files": {"bigfilechunking": True, "blacklisted_files": ["Thumbs.db"]}}
    }
    rules = rules_from_nextcloud_capabilities(older)
    assert rules.forbidden_names == {"thumbs.db"}
    assert target_name("thumbs.DB", rules) != "thumbs.DB"
    assert ".part" in rules.forbidden_suffixes  # always forbidden by the server


def test_multi_character_entries_are_substrings_not_character_sets() -> None:
    rules = rules_from_nextcloud_capabilities({"files": {"forbidden_filename_characters": ["~$"]}})
    assert target_name("rapport.docx", rules) == "rapport.docx"
    assert target_name("~$rapport.docx", rules).startswith("__rapport~")
    assert target_name("~rapport$.docx", rules) == "~rapport$.docx"


def test_capabilities_without_files_fall_back_to_the_defaults() -> None:
    assert rules_from_nextcloud_capabilities({"ocs": {"data": {"capabilities": {}}}}) == NEXTCLOUD
    added = {"files": {"forbidden_filename_characters": ["#", "%"]}}
    rules = rules_from_nextcloud_capabilities(added)
    assert {"#", "%", "\\", "/"} <= rules.forbidden_chars
    assert rules.forbidden_names == NEXTCLOUD.forbidden_names


# -- properties ----------------------------------------------------------------------------------

# Names mixing the troublesome: reserved words, dots, spaces, separators, controls,
# combining marks, multi-byte and astral characters.
PIECES = st.sampled_from(
    [
        "con",
        "NUL",
        "com1",
        "lpt\u00b2",
        ".",
        "..",
        " ",
        ".part",
        ".htaccess",
        "~",
        "_",
        "a",
        "Z",
        "\u00e9",
        "e\u0301",
        "\u0301",
        "\u1100\u1161",
        "\U0001f600",
        ":",
        "?",
        "*",
        "\\",
        "|",
        "<",
        '"',
        "\n",
        "\x07",
        "\r",
        ".txt",
        "-0123456789",
    ]
)
NAMES = st.one_of(
    st.lists(PIECES, max_size=12).map("".join),
    st.text(st.characters(exclude_characters="/"), max_size=40),
    st.text(st.sampled_from("é€😀a. "), min_size=100, max_size=300),
)
SEGMENTS = NAMES.filter(bool)  # a driveItem name is never empty (an empty one: see above)
RULES = st.sampled_from(
    PRESETS + [rules_from_nextcloud_capabilities({"files": NEXTCLOUD_WINDOWS_FILES})]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=4), RULES)
def test_every_mapped_segment_obeys_the_rules(segments: list[str], rules: NameRules) -> None:
    mapped = target_path("/".join(segments), rules)
    parts = mapped.path.split("/")
    assert len(parts) == len(segments)
    for part in parts:
        assert obeys(part, rules), (part, rules.label)


@settings(max_examples=400, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=4), RULES)
def test_mapping_is_idempotent_and_deterministic(segments: list[str], rules: NameRules) -> None:
    source = "/".join(segments)
    first = target_path(source, rules)
    again = target_path(first.path, rules)
    assert again.path == first.path
    assert again.renamed == []
    assert target_path(source, rules) == first


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=2, max_size=12, unique=True), RULES)
def test_siblings_never_collide(names: list[str], rules: NameRules) -> None:
    # Siblings the target itself would hold apart: distinct once NFC (and case-folded on a
    # case-insensitive target). OneDrive and SharePoint names are case-insensitive already.
    def key(name: str) -> str:
        nfc = unicodedata.normalize("NFC", name)
        return nfc.casefold() if rules.case_insensitive else nfc

    assume(len({key(n) for n in names}) == len(names))
    mapped = [target_path(f"Dossier/{name}", rules).path for name in names]
    assert len({key(m) for m in mapped}) == len(mapped)


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("é€😀日a"), min_size=1, max_size=400), RULES)
def test_byte_limits_hold_with_multibyte_characters(name: str, rules: NameRules) -> None:
    mapped = target_name(name, rules)
    assert units(mapped, rules) <= rules.max_name
    if units(name, rules) > rules.max_name:
        assert mapped.rsplit("~", 1)[0] and name.startswith(mapped.rsplit("~", 1)[0])
