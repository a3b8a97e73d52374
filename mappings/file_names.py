"""File and folder names as each target accepts them: pure, deterministic, idempotent.

OneDrive and SharePoint accept names that other servers refuse. `target_path` cleans a
source path ("Docs/2024/Rapport.docx", relative to the drive root) segment by segment under
a target's `NameRules`:

- every segment is normalised to NFC;
- a forbidden character (and any C0 control character or lone surrogate) becomes "_";
  trailing characters the target forbids at the end of a name (Windows: " " and ".") are
  dropped; "", "." and ".." never come out;
- a segment that had to change gets a suffix "~<10 hex digits>" placed before its extension,
  from a SHA-256 of the SOURCE path up to that segment: renamed siblings never collide with
  each other, nor (short of a digest collision) with names that needed no change;
- a name longer than the target allows is shortened (whole characters) to make room for the
  suffix, in the unit the target counts (UTF-8 bytes, or UTF-16 code units on Windows);
- a path still longer than the target allows, or deeper, is `refused` (not carried).

A name that only changed by NFC normalisation keeps its name without a suffix. It is
reported in `renamed` only when the target is byte-sensitive (stores names as given:
a local disk, Apache, cozy-stack, NTFS); Nextcloud normalises every path to NFC itself, so
there the name the user sees is unchanged. Two siblings differing only by normalisation (or
by case, on a case-insensitive target) would land on one target name: the plan reports them
(`mappings.files.drive_findings`), since a per-path function cannot see siblings.

Sources of the rules:
- Nextcloud: `lib/private/Files/FilenameValidator.php` (names over 250 bytes refused because
  `oc_filecache.name` is 250 long; "\\" and "/" and 0-31 always forbidden; ".part" always a
  forbidden extension; defaults `forbidden_filenames` [".htaccess"] and
  `forbidden_filename_extensions` [".filepart"]; names compared lowercase; a basename is the
  part before the first dot not at position 0), `apps/files/lib/Capabilities.php` (the
  `files` capability publishes the four lists, plus the older `blacklisted_files`),
  `apps/files/lib/Service/SettingsService.php` (Windows-compatible mode adds the Windows
  basenames, `<>:"|?*` and the extensions " " and "."), and `oc_filecache.path`, 4000 long
  (core/Migrations/Version13000Date20170718121200.php) holding "files/<path>".
- Twake Drive (cozy-stack `model/vfs/vfs.go`): `ForbiddenFilenameChars = "/\\x00\\n\\r"`, an
  empty name is illegal, a path deeper than `MaxDepth` (512) is illegal.
- Windows: https://learn.microsoft.com/en-us/windows/win32/fileio/naming-a-file (reserved
  characters, CON/PRN/AUX/NUL/COM0-9/LPT0-9 and their superscript variants even with an
  extension, no trailing space or period, MAX_PATH 260 including the terminating NUL,
  components of 255 UTF-16 code units).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Unit = Literal["utf-8", "utf-16"]
DIGEST_HEX = 10  # 40 bits: a folder of 10,000 renamed names collides with odds of 5e-5
_SEPARATORS = ("~", "-", "+", "=")
_REPLACEMENTS = ("_", "-", "+", "=")
_RESERVED = frozenset({"", ".", ".."})
_EXTENSION_MAX_CHARS = 16  # longer "extensions" are part of the name ("a.very-long-word")


@dataclass(frozen=True, slots=True)
class NameRules:
    """What one target refuses in names and paths. Lists are compared lowercase.

    `forbidden_basenames` are Nextcloud's "forbidden prefixes": the part of a name before
    its first dot (a leading dot belongs to the name), so "con" also forbids "con.txt".
    `forbidden_suffixes` are endings (".part", and " " or "." on Windows).
    Lengths count `unit`s: UTF-8 bytes, or UTF-16 code units (Windows).
    """

    label: str
    forbidden_chars: frozenset[str] = frozenset()
    forbidden_substrings: tuple[str, ...] = ()  # a Nextcloud admin may list "..", "~$"
    forbidden_names: frozenset[str] = frozenset()
    forbidden_basenames: frozenset[str] = frozenset()
    forbidden_suffixes: tuple[str, ...] = ()
    max_name: int = 255
    max_path: int | None = None
    max_depth: int | None = None
    unit: Unit = "utf-8"
    case_insensitive: bool = False  # "a" and "A" are one name on the target
    byte_sensitive: bool = True  # False when the target normalises names to NFC itself
    forbid_controls: bool = True  # C0 control characters (0x00-0x1F)

    def under(self, prefix: str) -> NameRules:
        """The same rules for paths placed under `prefix` (a root that uses up path length)."""
        if self.max_path is None or not prefix:
            return self
        used = length(prefix.rstrip("/"), self.unit) + 1
        return dataclasses.replace(self, max_path=max(0, self.max_path - used))

    @property
    def replacement(self) -> str:
        return next(c for c in _REPLACEMENTS if not self.refuses_char(c))

    @property
    def separator(self) -> str:
        return next(c for c in _SEPARATORS if not self.refuses_char(c))

    def refuses_char(self, char: str) -> bool:
        code = ord(char)
        return (
            char in ("/", "\0")
            or char in self.forbidden_chars
            or 0xD800 <= code <= 0xDFFF  # a lone surrogate cannot be encoded
            or (self.forbid_controls and code < 0x20)
        )


@dataclass(frozen=True, slots=True)
class MappedPath:
    """A source path as the target will store it.

    `renamed` lists (source path, target path) up to each segment that changed; `refused`
    says why the path cannot be carried at all (then `path` is informative only).
    """

    path: str
    renamed: list[tuple[str, str]] = field(default_factory=list)
    refused: str | None = None


def length(text: str, unit: Unit) -> int:
    """The length of `text` as a target counts it."""
    if unit == "utf-16":
        return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)
    return len(text.encode("utf-8", "surrogatepass"))


# -- presets ---------------------------------------------------------------------------------

_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"{port}{n}" for port in ("com", "lpt") for n in "0123456789\u00b9\u00b2\u00b3"}
)

LOCAL = NameRules(
    label="local",
    forbid_controls=False,  # a Linux file system takes every byte but "/" and NUL
    max_name=255,  # NAME_MAX
    max_path=4095,  # PATH_MAX (4096) less the terminating NUL; use `under(root)`
)

GENERIC = NameRules(
    # An RFC 4918 server on a Linux disk (Apache mod_dav, rclone, wsgidav). C0 controls stay
    # forbidden: a PROPFIND multistatus is XML 1.0, which cannot carry them.
    label="generic",
    max_name=255,
    # Apache's default LimitRequestLine (8190 bytes) must hold the request line with the
    # path percent-encoded (up to 3 bytes per byte) and the server's root.
    max_path=2048,
)

NEXTCLOUD = NameRules(
    label="nextcloud",
    forbidden_chars=frozenset("\\/"),
    forbidden_names=frozenset({".htaccess"}),
    forbidden_suffixes=(".filepart", ".part"),
    max_name=250,
    max_path=4000 - len("files/"),
    byte_sensitive=False,
)

TWAKE_DRIVE = NameRules(
    label="twake-drive",
    forbidden_chars=frozenset("/\0\n\r"),
    forbid_controls=False,
    max_name=255,  # not enforced by cozy-stack itself; the limit of the disks under it
    max_depth=511,  # cozy-stack refuses a full path with 512 or more "/"
)

WINDOWS = NameRules(
    label="windows",
    forbidden_chars=frozenset('<>:"/\\|?*'),
    forbidden_basenames=_WINDOWS_DEVICES,
    forbidden_suffixes=(" ", "."),
    max_name=255,
    max_path=259,  # MAX_PATH less the NUL; a synced folder's own root: `under(root)`
    unit="utf-16",
    case_insensitive=True,
)

PRESETS: dict[str, NameRules] = {
    r.label: r for r in (LOCAL, GENERIC, NEXTCLOUD, TWAKE_DRIVE, WINDOWS)
}


def rules_from_nextcloud_capabilities(capabilities_json: str | Mapping[str, Any]) -> NameRules:
    """Nextcloud's naming rules as its server publishes them (OCS `capabilities`).

    Takes the whole OCS document, its `capabilities`, or the `files` part. A server older
    than Nextcloud 30 only publishes `blacklisted_files`; what it does not publish keeps
    the defaults of `NEXTCLOUD`. Characters "\\" and "/" and the ".part" extension are
    always forbidden by the server, published or not.
    """
    document: Any = capabilities_json
    if isinstance(capabilities_json, str):
        document = json.loads(capabilities_json)
    files = _files_capability(document)
    if files is None:
        return NEXTCLOUD
    names = _strings(files.get("forbidden_filenames")) | _strings(files.get("blacklisted_files"))
    if "forbidden_filenames" not in files and "blacklisted_files" not in files:
        names = set(NEXTCLOUD.forbidden_names)
    suffixes = _strings(files.get("forbidden_filename_extensions"))
    if "forbidden_filename_extensions" not in files:
        suffixes = set(NEXTCLOUD.forbidden_suffixes)
    # Each entry is matched as a substring (`str_contains`): most are one character.
    entries = _raw_strings(files.get("forbidden_filename_characters"))
    chars = {entry for entry in entries if len(entry) == 1}
    return dataclasses.replace(
        NEXTCLOUD,
        label="nextcloud",
        forbidden_chars=frozenset(chars | set(NEXTCLOUD.forbidden_chars)),
        forbidden_substrings=tuple(sorted({entry for entry in entries if len(entry) > 1})),
        forbidden_names=frozenset(names),
        forbidden_basenames=frozenset(_strings(files.get("forbidden_filename_basenames"))),
        forbidden_suffixes=tuple(sorted(suffixes | {".part"})),
    )


def _files_capability(document: Any) -> Mapping[str, Any] | None:
    node = document
    for key in ("ocs", "data", "capabilities"):
        if isinstance(node, Mapping) and isinstance(node.get(key), Mapping):
            node = node[key]
    if not isinstance(node, Mapping):
        return None
    if isinstance(node.get("files"), Mapping):
        return node["files"]
    return node if any(k.startswith(("forbidden_", "blacklisted_")) for k in node) else None


def _raw_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _strings(value: Any) -> set[str]:
    return {v.lower() for v in _raw_strings(value)}


# -- one name --------------------------------------------------------------------------------


def acceptable(name: str, rules: NameRules) -> bool:
    """True when the target takes `name` as it is (and it is already NFC)."""
    if name in _RESERVED or unicodedata.normalize("NFC", name) != name:
        return False
    if any(rules.refuses_char(c) for c in name):
        return False
    if any(sub in name for sub in rules.forbidden_substrings):
        return False
    lowered = name.lower()
    if lowered in rules.forbidden_names or _basename(lowered) in rules.forbidden_basenames:
        return False
    if any(lowered.endswith(suffix) for suffix in rules.forbidden_suffixes):
        return False
    return length(name, rules.unit) <= rules.max_name


def _basename(name: str) -> str:
    dot = name.find(".", 1)
    return name if dot < 0 else name[:dot]


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > _EXTENSION_MAX_CHARS:
        return name, ""
    return name[:dot], name[dot:]


def _digest(source_prefix: str) -> str:
    encoded = source_prefix.encode("utf-8", "surrogatepass")
    return hashlib.sha256(encoded).hexdigest()[:DIGEST_HEX]


def _scrub(name: str, rules: NameRules) -> str:
    """Forbidden characters replaced, forbidden trailing characters dropped."""
    replacement = rules.replacement
    cleaned = "".join(replacement if rules.refuses_char(c) else c for c in name)
    for substring in rules.forbidden_substrings:
        cleaned = cleaned.replace(substring, replacement * len(substring))
    trailing = "".join(s for s in rules.forbidden_suffixes if len(s) == 1)
    if trailing:
        cleaned = cleaned.rstrip(trailing)
    return cleaned if cleaned not in _RESERVED else replacement


def _fit(stem: str, tail: str, rules: NameRules) -> str:
    """`stem + tail`, the stem shortened (whole characters) to the target's name length;
    "" when no stem makes the name acceptable."""
    budget = rules.max_name - length(tail, rules.unit)
    kept, used = [], 0
    for char in stem:
        used += length(char, rules.unit)
        if used > budget:
            break
        kept.append(char)
    shortened = "".join(kept)
    for cut in range(min(len(shortened), 4)):  # a cut may leave a non-NFC tail: trim it
        candidate = shortened[: len(shortened) - cut] + tail
        if shortened[: len(shortened) - cut] and acceptable(candidate, rules):
            return candidate
    return ""


def target_name(name: str, rules: NameRules, source_prefix: str | None = None) -> str:
    """One name as the target stores it; `source_prefix` (the source path up to and
    including this name) seeds the digest suffix, the name itself when omitted."""
    normalised = unicodedata.normalize("NFC", name)
    if acceptable(normalised, rules):
        return normalised
    cleaned = _scrub(normalised, rules)
    marker = rules.separator + _digest(name if source_prefix is None else source_prefix)
    stem, extension = _split_extension(cleaned)
    basename = _basename(cleaned)  # "nul.tar.gz": the marker goes after "nul"
    attempts = [
        (stem, marker + extension),
        (basename, marker + cleaned[len(basename) :]),
        (cleaned, marker),
    ]
    for head, tail in attempts:
        fitted = _fit(unicodedata.normalize("NFC", head), tail, rules)
        if fitted:
            return fitted
    return rules.replacement + marker


# -- a path ----------------------------------------------------------------------------------


def target_path(source_path: str, rules: NameRules) -> MappedPath:
    """The path under which the target stores `source_path` (see the module docstring)."""
    segments = source_path.strip("/").split("/")
    mapped: list[str] = []
    renamed: list[tuple[str, str]] = []
    for depth, segment in enumerate(segments, start=1):
        source_prefix = "/".join(segments[:depth])
        name = target_name(segment, rules, source_prefix)
        mapped.append(name)
        if name != segment and (rules.byte_sensitive or name != _nfc(segment)):
            renamed.append((source_prefix, "/".join(mapped)))
    path = "/".join(mapped)
    return MappedPath(path, renamed, _refusal(path, len(mapped), rules))


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _refusal(path: str, depth: int, rules: NameRules) -> str | None:
    if rules.max_depth is not None and depth > rules.max_depth:
        return f"path is {depth} levels deep, over the target's limit of {rules.max_depth}"
    size = length(path, rules.unit)
    if rules.max_path is not None and size > rules.max_path:
        unit = "bytes" if rules.unit == "utf-8" else "UTF-16 units"
        return f"path is {size} {unit} long, over the target's limit of {rules.max_path}"
    return None


def twin_path(path: str, source_id: str, max_bytes: int = 255) -> str:
    """Where an item goes when another item already holds its mapped path.

    Two source names can become one target name (NFC and NFD forms of "Résumé", case
    twins on a case-insensitive server, two names cleaned alike): the second one gets
    "~" and a digest of its source id before the extension, so both are kept. The stem
    is shortened (whole characters) so the twin's name stays within `max_bytes` of UTF-8.
    """
    parent, _, name = path.rpartition("/")
    digest = hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:DIGEST_HEX]
    stem, dot, extension = name.rpartition(".")
    if not (dot and stem):
        stem, extension = name, ""
    tail = f"~{digest}" + (f".{extension}" if extension else "")
    room = max_bytes - len(tail.encode("utf-8"))
    while stem and len(stem.encode("utf-8")) > room:
        stem = stem[:-1]
    twin = stem + tail
    return f"{parent}/{twin}" if parent else twin
