"""The cluster tests reuse the end-to-end harness (sandbox tenant, Dovecot comparison)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
