"""Recorded Graph response shapes and the comparison of a served answer against one.

A fixture in `recorded/` holds what one Microsoft Learn page documents for one endpoint:
the page (`source`), the request (`request`, a path with `{placeholders}`), the resource
of its entities (`resource`), the status, the paging links it documents (`links`: link
name -> the token parameters the link carries) and an anonymised response `body`. The
rules the comparison applies are written in the package's test module docstring
(`test_sandbox_contract.py`); this module only implements them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

RECORDED = Path(__file__).parent / "recorded"
LINKS = ("@odata.nextLink", "@odata.deltaLink")
# Entity annotations that mark the kind of a delta entry (a live entity, a removed one).
REMOVED_MARKERS = ("@removed", "deleted")
# Navigation properties served only when `$expand` asks for them.
EXPANSIONS = frozenset({"singleValueExtendedProperties", "replies"})
_KEY_IN_PARENS = re.compile(r"^(?P<name>[^(]+)\('?(?P<key>[^')]*)'?\)$")
_FUNCTION = re.compile(r"^(?P<name>[^(]+)\((?P<args>.*)\)$")


@dataclass(frozen=True)
class Recorded:
    """One documented endpoint: what its Microsoft Learn page shows."""

    name: str
    source: str
    request: str
    resource: str | None
    status: int
    body: Any
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.request.split()[0]

    @property
    def path(self) -> str:
        return self.request.split()[1]


def load(name: str) -> Recorded:
    """The fixture `recorded/<name>.json`."""
    raw = json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))
    links = {key: tuple(tokens) for key, tokens in raw.get("links", {}).items()}
    return Recorded(
        name=name,
        source=raw["source"],
        request=raw["request"],
        resource=raw.get("resource"),
        status=int(raw.get("status", 200)),
        body=raw.get("body"),
        links=links,
        headers=raw.get("headers", {}),
    )


def all_recorded() -> list[Recorded]:
    return [load(path.stem) for path in sorted(RECORDED.glob("*.json"))]


# -- JSON types and paths -------------------------------------------------------------------


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: object, array, string, number, boolean, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def field_paths(entity: Any, prefix: str = "") -> set[str]:
    """Every dotted field path of an entity; arrays are transparent (`a.b` for `a[].b`)."""
    found: set[str] = set()
    if isinstance(entity, list):
        for element in entity:
            found |= field_paths(element, prefix)
    elif isinstance(entity, dict):
        for key, value in entity.items():
            path = f"{prefix}{key}"
            found.add(path)
            found |= field_paths(value, path + ".")
    return found


def entities(body: Any) -> list[Any]:
    """The entities of an answer: the `value` elements of a collection, else the body."""
    if isinstance(body, dict) and isinstance(body.get("value"), list):
        return list(body["value"])
    return [body]


# -- shapes ---------------------------------------------------------------------------------------


def shape_problems(
    served: Any, documented: Any, required: Iterable[str] = (), where: str = "$"
) -> list[str]:
    """How `served` departs from the `documented` shape; empty when it conforms.

    - every `required` dotted path that the documented shape carries must be served;
    - a field present on both sides has the same JSON type (null on either side matches:
      Graph sends null for a property without a value) and, recursively, the same nesting;
    - array elements are compared with the closest documented element (the one sharing
      the most keys), so a folder is held to the documented folder, a file to the file;
    - fields only one side has are otherwise allowed (the documented examples are
      truncated, as their pages say).
    """
    wanted = set(required)
    problems: list[str] = []
    if json_type(served) != json_type(documented):
        if served is not None and documented is not None:
            problems.append(f"{where}: {json_type(served)}, documented {json_type(documented)}")
        return problems
    if isinstance(documented, dict):
        for key, value in documented.items():
            if key in LINKS:
                continue  # checked by `link_problems`
            here = f"{where}.{key}"
            below = {p[len(key) + 1 :] for p in wanted if p.startswith(key + ".")}
            if key not in served:
                if key in wanted or below:
                    problems.append(f"{here}: missing (read by the client)")
                continue
            problems += shape_problems(served[key], value, below, here)
    elif isinstance(documented, list) and documented:
        for index, element in enumerate(served):
            twin = closest(element, documented)
            problems += shape_problems(element, twin, wanted, f"{where}[{index}]")
    return problems


def closest(element: Any, documented: list[Any]) -> Any:
    """The documented array element most like `element`: same kind of delta entry first
    (removed or live), then the most keys in common less the keys `element` lacks (a
    folder is nearer the documented folder than the file), then the first."""
    if not isinstance(element, dict):
        return documented[0]
    objects = [d for d in documented if isinstance(d, dict)] or documented

    def likeness(candidate: Any) -> tuple[int, int, int]:
        if not isinstance(candidate, dict):
            return (0, 0, 0)
        same_kind = all((m in candidate) == (m in element) for m in REMOVED_MARKERS)
        shared, lacking = len(set(candidate) & set(element)), len(set(candidate) - set(element))
        return (int(same_kind), shared - lacking, -lacking)

    return max(objects, key=likeness)


def removed_problems(served: Mapping[str, Any], documented: Mapping[str, Any]) -> list[str]:
    """A delta page's removals take the documented form (`@removed` with a reason string,
    or the drive's `deleted` facet), with the entity's id."""
    problems: list[str] = []
    forms = [d for d in entities(documented) if any(m in d for m in REMOVED_MARKERS)]
    if not forms:
        return ["the recorded page documents no removal"]
    marker = next(m for m in REMOVED_MARKERS if m in forms[0])
    gone = [e for e in entities(served) if any(m in e for m in REMOVED_MARKERS)]
    for index, entry in enumerate(gone):
        if marker not in entry:
            problems.append(f"removal {index}: no {marker!r} (served {sorted(entry)})")
            continue
        problems += shape_problems(entry, forms[0], {"id", marker}, f"$.removed[{index}]")
    return problems


# -- paging links ---------------------------------------------------------------------------------


def link_problems(
    body: Mapping[str, Any], recorded: Recorded, base_url: str, template: str | None = None
) -> list[str]:
    """The paging links of `body` take the documented form.

    Each link is an absolute http(s) URL under the service root `base_url`, on the path
    of the request (`template`, by default the documented one: literal segments equal,
    `{placeholders}` any one segment, `name('key')` read as `name/key`), carrying one of
    the documented token parameters (`?$skiptoken=`, or `delta(token='...')`); a page
    never carries both links, and only links its page documents.
    """
    problems: list[str] = []
    present = [key for key in LINKS if key in body]
    if len(present) > 1:
        problems.append("both @odata.nextLink and @odata.deltaLink on one page")
    for key in present:
        link = body[key]
        if key not in recorded.links:
            problems.append(f"{key}: not documented for {recorded.request}")
            continue
        if not isinstance(link, str):
            problems.append(f"{key}: {json_type(link)}, documented string")
            continue
        problems += [
            f"{key} {link}: {p}"
            for p in _one_link(link, base_url, template or recorded.path, recorded.links[key])
        ]
    return problems


def _one_link(link: str, base_url: str, template: str, tokens: tuple[str, ...]) -> list[str]:
    parts, root = urlsplit(link), urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ["not an absolute http(s) URL"]
    if (parts.scheme, parts.netloc) != (root.scheme, root.netloc):
        return [f"not on the service's host {root.scheme}://{root.netloc}"]
    if not parts.path.startswith(root.path.rstrip("/") + "/"):
        return [f"not under the service root {root.path}"]
    segments, arguments = _segments(parts.path[len(root.path.rstrip("/")) :])
    expected = [s for s in template.split("/") if s]
    same = len(segments) == len(expected) and all(
        want.startswith("{") or want.lower() == got.lower()
        for want, got in zip(expected, segments, strict=True)
    )
    problems = [] if same else [f"path {'/'.join(segments)} is not {template}"]
    query = {name.lower() for name in parse_qs(parts.query, keep_blank_values=True)}
    carried = query | {name.lower() for name in arguments}
    if tokens and not carried & {t.lower() for t in tokens}:
        problems.append(f"carries none of {', '.join(tokens)}")
    if not tokens and not carried:
        problems.append("carries no state in its query")
    return problems


def _segments(path: str) -> tuple[list[str], set[str]]:
    """Path segments with `name('key')` split in two and function arguments set apart."""
    segments: list[str] = []
    arguments: set[str] = set()
    for raw in path.split("/"):
        segment = unquote(raw)
        if not segment:
            continue
        keyed = _KEY_IN_PARENS.match(segment)
        call = _FUNCTION.match(segment)
        if call and "=" in call["args"]:
            arguments |= {a.split("=", 1)[0].strip() for a in call["args"].split(",")}
            segments.append(call["name"])
        elif call and not call["args"]:
            segments.append(call["name"])
        elif keyed:
            segments += [keyed["name"], keyed["key"]]
        else:
            segments.append(segment)
    return segments, arguments


# -- the error envelope ---------------------------------------------------------------------------


def error_problems(served: Any, documented: Any) -> list[str]:
    """`{"error": {"code", "message", "innerError": {...}}}` with the documented types and
    a message (the code may be empty: json-batching's example shows one that is)."""
    if not isinstance(served, dict) or not isinstance(served.get("error"), dict):
        return [f"no error object: {served!r}"[:200]]
    required = {"error", "error.code", "error.message", "error.innerError"}
    problems = shape_problems(served, documented, required)
    if not served["error"].get("message"):
        problems.append("$.error.message: empty")
    return problems


# -- a whole answer -------------------------------------------------------------------------------


def required_fields(
    recorded: Recorded,
    reads: Mapping[str, Iterable[str]],
    select: Iterable[str] = (),
    expand: Iterable[str] = (),
) -> set[str]:
    """The fields the client reads of the recorded resource that its example carries;
    with `$select`, only those of the selected properties; expansions only if expanded."""
    wanted = {
        p
        for p in reads.get(recorded.resource or "", ())
        if p.split(".")[0] not in EXPANSIONS or p.split(".")[0] in set(expand)
    }
    chosen = {name.lower() for name in select}
    if chosen:  # expanded navigation properties come with any $select
        kept = chosen | {"id"} | {name.lower() for name in expand}
        wanted = {p for p in wanted if p.split(".")[0].lower() in kept}
    return wanted & field_paths(entities(recorded.body))


def body_problems(
    served: Any,
    recorded: Recorded,
    required: Iterable[str],
    base_url: str,
    template: str | None = None,
) -> list[str]:
    """Shape problems of a served answer (its entities against the documented ones, the
    rest of the body against the rest) and paging-link problems."""
    documented = recorded.body
    if not isinstance(documented, dict) or not isinstance(served, dict):
        return shape_problems(served, documented, required)
    problems: list[str] = []
    if isinstance(documented.get("value"), list):
        if not isinstance(served.get("value"), list):
            return ["$.value: not an array"]
        rest = {k: v for k, v in documented.items() if k != "value"}
        problems += shape_problems({k: v for k, v in served.items() if k != "value"}, rest)
        problems += shape_problems(served["value"], documented["value"], required, "$.value")
    else:
        problems += shape_problems(served, documented, required)
    return problems + link_problems(served, recorded, base_url, template)
