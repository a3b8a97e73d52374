"""Reading a file that holds a secret (a password, a token, a key): only when no one but
its owner can read it, as ssh does with keys. `security.readable_secret_files = "warn"`
relaxes the refusal into a warning, for a deployment that shares them on purpose."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)
POLICIES = ("refuse", "warn")
_policy = {"readable": "refuse"}


def set_policy(readable: str) -> None:
    """What a secret file others can read gets: "refuse" (the default) or "warn"."""
    _policy["readable"] = readable


def read_secret_bytes(path: Path, setting: str) -> bytes:
    """The file's bytes; `ConfigError` naming `setting` when it cannot be read or when
    other users can read it."""
    try:
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            exposed = (
                f"{path} can be read by other users (mode {stat.S_IMODE(mode):04o}): "
                f"chmod 600 {path}"
            )
            if _policy["readable"] == "refuse":
                raise ConfigError(
                    setting, f'{exposed} (or set security.readable_secret_files = "warn")'
                )
            log.warning("%s: %s", setting, exposed)
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None


def read_secret_text(path: Path, setting: str) -> str:
    try:
        return read_secret_bytes(path, setting).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(setting, f"{path} is not UTF-8 text") from None
