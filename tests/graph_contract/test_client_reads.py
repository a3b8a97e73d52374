"""The client's side of the contract: what it reads of Graph is what Microsoft documents.

`connectors/graph/reads.py` declares, per resource, every field the connector reads or
`$select`s. Three checks keep that declaration honest, so that it cannot go stale:

- every declared field appears in a recorded documentation example of its resource
  (`recorded/*.json`), unless `UNDOCUMENTED` names it with a reason; an `UNDOCUMENTED`
  entry must still be declared and still be undocumented;
- every string the connector's code uses as a JSON key (`x.get("k")`, `x["k"]`,
  `"k" in x`, `select=[...]`) is declared, or is one of `NOT_GRAPH`; the scanned code is
  `connectors/graph/*.py` and the drive-item functions of `mappings/files.py` it calls;
- every declared name still occurs as a string in that code, so a field the code stopped
  reading does not linger in the declaration.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from hirondelle.connectors.graph.reads import ANNOTATIONS, NOT_GRAPH, READS, UNDOCUMENTED
from hirondelle.tests.graph_contract.contract import all_recorded, entities, field_paths, load

ROOT = Path(__file__).resolve().parents[2]
SCANNED: dict[Path, tuple[str, ...] | None] = {
    **{path: None for path in sorted((ROOT / "connectors" / "graph").glob("*.py"))},
    ROOT / "mappings" / "files.py": ("drive_item_meta", "drive_item_kind"),
}
# Resources nested in another one's example: (parent resource, its paths holding them).
GRANTS = ("grantedToV2", "grantedTo", "grantedToIdentitiesV2", "grantedToIdentities")
NESTED = {"sharePointIdentitySet": ("permission", GRANTS)}
IDENTITY_OF = "sharePointIdentitySet"


def documented(resource: str) -> set[str]:
    """Every field path of the resource across the recorded examples."""
    found: set[str] = set()
    for recorded in all_recorded():
        if recorded.resource == resource:
            found |= field_paths(entities(recorded.body))
    if resource in NESTED:
        parent, holders = NESTED[resource]
        for path in documented(parent):
            head, _, rest = path.partition(".")
            if head in holders and rest:
                found.add(rest)
    if resource == "identity":  # the identities held by the identity sets of a grant
        found |= {p.split(".", 1)[1] for p in documented(IDENTITY_OF) if "." in p}
    return found


def test_every_declared_read_is_documented_for_its_resource() -> None:
    problems = [
        f"{resource}.{path}"
        for resource, paths in READS.items()
        for path in sorted(paths)
        if path not in documented(resource) and (resource, path) not in UNDOCUMENTED
    ]
    assert not problems, f"read but not in any recorded documentation example: {problems}"


def test_undocumented_reads_are_declared_and_still_undocumented() -> None:
    for (resource, path), reason in UNDOCUMENTED.items():
        assert reason
        assert path in READS[resource], f"{resource}.{path}: no longer read, drop it"
        assert path not in documented(resource), f"{resource}.{path}: documented now, drop it"


def test_annotations_read_are_documented() -> None:
    assert ANNOTATIONS <= set(load("annotations").body)


def test_resources_named_by_the_recordings_are_declared() -> None:
    named = {recorded.resource for recorded in all_recorded()} - {None}
    assert named <= set(READS), named - set(READS)


def _keys_read(tree: ast.AST) -> Iterator[str]:
    """String constants used as JSON keys: .get/.pop/.setdefault, subscripts, `in`,
    and the elements of a `select=[...]` argument."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("get", "pop", "setdefault") and node.args:
                yield from _strings(node.args[0])
        elif isinstance(node, ast.Subscript):
            yield from _strings(node.slice)
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) for op in node.ops
        ):
            yield from _strings(node.left)
        elif isinstance(node, ast.keyword) and node.arg == "select":
            if isinstance(node.value, ast.List | ast.Tuple):
                for element in node.value.elts:
                    yield from _strings(element)


def _strings(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value


def _scanned_trees() -> Iterator[tuple[str, ast.AST]]:
    for path, functions in SCANNED.items():
        module = ast.parse(path.read_text(encoding="utf-8"))
        if functions is None:
            yield path.name, module
            continue
        found = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name in functions]
        assert {f.name for f in found} == set(functions), f"{path.name}: {functions} moved"
        yield from ((f"{path.name}:{f.name}", f) for f in found)


def _declared_names() -> set[str]:
    names = {segment for paths in READS.values() for p in paths for segment in p.split(".")}
    return names | set(ANNOTATIONS) | {"value"}  # a collection's entities


# Named by file (and function) only: an id holding the tree's repr (its memory address)
# differs between processes, and pytest-xdist refuses workers that collect different ids.
@pytest.mark.parametrize(
    "where, tree", [pytest.param(where, tree, id=where) for where, tree in _scanned_trees()]
)
def test_every_key_the_code_reads_is_declared(where: str, tree: ast.AST) -> None:
    unknown = sorted(set(_keys_read(tree)) - _declared_names() - NOT_GRAPH)
    assert not unknown, (
        f"{where} reads {unknown}: declare them in connectors/graph/reads.py "
        "(READS under their resource, or NOT_GRAPH when they are not Graph fields)"
    )


def test_every_declared_name_still_occurs_in_the_code() -> None:
    strings = {
        node.value
        for _, tree in _scanned_trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    text = "\n".join(path.read_text(encoding="utf-8") for path in SCANNED)
    stale = sorted(
        name
        for name in _declared_names() | NOT_GRAPH
        if name not in strings and f'"{name}"' not in text
    )
    assert not stale, f"declared but no longer in the code: {stale}"
