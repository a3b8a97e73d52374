"""The command line starts light: the commands import what they use when they run, so
`--help`, `init` or `sandbox serve` do not pay for the state, Graph and the targets."""

from __future__ import annotations

import subprocess
import sys

# Each costs from 50 ms to 0.3 s of CPU to import; `run` and the others load them when run.
HEAVY = {"sqlalchemy", "alembic", "rich", "httpx", "azure", "msgraph", "kiota_abstractions"}


def loaded_after(code: str) -> set[str]:
    listing = f"{code}; import sys; print(' '.join(sys.modules))"
    found = subprocess.run(
        [sys.executable, "-c", listing], capture_output=True, text=True, check=True
    ).stdout.split()
    return {name.split(".")[0] for name in found}


def test_importing_the_command_line_loads_no_heavy_package() -> None:
    assert loaded_after("import hirondelle.cli") & HEAVY == set()


def test_a_command_loads_what_it_runs() -> None:
    # the probe itself sees what a module loads (else the test above could not fail)
    assert {"sqlalchemy", "rich"} <= loaded_after("import hirondelle.migrator.operations")
