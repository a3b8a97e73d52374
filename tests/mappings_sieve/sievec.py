"""Pigeonhole's own compiler, `sievec` (Debian's dovecot-sieve), run on mapped scripts so
that a syntax error, an unknown extension or a malformed argument cannot pass a test."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def sievec() -> str:
    found = shutil.which("sievec")
    if found is None:
        raise AssertionError("sievec is not installed: apt-get install dovecot-sieve (./test does)")
    return found


def compile_scripts(scripts: dict[str, str], enable: str = "") -> None:
    """Compile each script (name -> text) with `sievec`; fail with the compiler's messages.

    A configuration of its own keeps the machine's Dovecot settings out of it: Pigeonhole's
    default extensions are enabled, as on a server that was not told otherwise, plus those
    `enable` names ("editheader", which a server enables by choice)."""
    with tempfile.TemporaryDirectory(prefix="sievec-") as folder:
        root = Path(folder)
        extra = f"plugin {{\n  sieve_extensions = +{enable}\n}}\n" if enable else ""
        (root / "dovecot.conf").write_text(extra, encoding="utf-8")
        errors = []
        for name, text in scripts.items():
            source = root / f"{name}.sieve"
            source.write_bytes(text.encode("utf-8"))
            done = subprocess.run(
                [
                    sievec(),
                    "-c",
                    str(root / "dovecot.conf"),
                    str(source),
                    str(root / f"{name}.svbin"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                errors.append(f"{name}: {done.stdout}{done.stderr}")
        assert not errors, "\n".join(errors)
