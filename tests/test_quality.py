"""ruff and mypy stay clean over the product, the tests and the benchmarks: part of the test
command so CI enforces them. Every type-ignore comment in the repository names its code and why."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "migrator",
    "workloads",
    "commands",
    "state",
    "connectors",
    "mappings",
    "sandbox",
    "report",
    "tests",
    "bench",
]
# An ignore names what it silences and says why: `# type: ignore[code]  # reason`.
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[a-z, -]+\])?(?P<rest>.*)$")


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format() -> None:
    lint = run(sys.executable, "-m", "ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout
    form = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert form.returncode == 0, form.stdout


def test_mypy(tmp_path: Path) -> None:
    # The repository root is the `hirondelle` package: give mypy a parent folder that
    # names it so, without depending on where the clone lives.
    (tmp_path / "hirondelle").symlink_to(ROOT, target_is_directory=True)
    targets = [arg for p in PACKAGES for arg in ("-p", f"hirondelle.{p}")]
    result = run(
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / ".mypy_cache"),
        *targets,
        "-m",
        "hirondelle.cli",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_every_type_ignore_names_its_code_and_reason() -> None:
    bare = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if any(part.startswith(".") or part == "build" for part in relative.parts):
            continue  # a virtual environment, caches, a build's copies
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = IGNORE.search(line)
            if found and not (found["code"] and found["rest"].strip().startswith("#")):
                bare.append(f"{relative}:{number}: {line.strip()}")
    assert bare == []


# A merge left unresolved: git's markers at the start of a line (the README once shipped one).
CONFLICT = re.compile(r"^(<{7}|>{7}) |^={7}$", re.MULTILINE)


def test_no_file_holds_a_merge_conflict_marker() -> None:
    listed = run("git", "ls-files", "-z")
    if listed.returncode != 0:  # not a git checkout (an sdist): walk the tree instead
        paths = [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    else:
        paths = [ROOT / name for name in listed.stdout.split("\0") if name]
    marked = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary content cannot hold a text merge
        marked += [f"{path.relative_to(ROOT)}" for _ in CONFLICT.finditer(text)][:1]
    assert marked == []
