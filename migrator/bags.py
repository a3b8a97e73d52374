"""The archive targets' bags, opened and closed around a pass by the command's process.

A pass that writes removes each archive root's manifests before its first owner starts
(`unseal`), and the command writes them again once every worker finished (`seal`): one
writer of the manifests however many processes wrote the payload. A pass that fails or is
interrupted leaves the bags without manifests, which says they are not complete, until
the next pass ends (see `connectors.archive_bag`).
"""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..connectors.archive_bag import Sealed, seal, unseal
from ..workloads import BY_NAME
from .config import Config
from .errors import ConfigError

log = logging.getLogger(__name__)


def archive_roots(config: Config) -> dict[Path, list[str]]:
    """Each archive root and the workloads written into it (targets may share one)."""
    roots: dict[Path, list[str]] = {}
    for workload, target in config.targets.items():
        if target.kind == "archive" and "path" in target.options:
            root = (config.base_dir / str(target.options["path"])).resolve()
            roots.setdefault(root, []).append(workload)
    return roots


async def unseal_archives(config: Config) -> None:
    for root, workloads in archive_roots(config).items():
        try:
            await asyncio.to_thread(unseal, root)
        except OSError as error:
            raise _unwritable(root, workloads, error) from None


def _unwritable(root: Path, workloads: list[str], error: OSError) -> ConfigError:
    return ConfigError(
        f"targets.{workloads[0]}.path",
        f"the archive {root} cannot be written ({error.strerror or error}): "
        "fix its permissions or free space, or choose another folder",
    )


async def seal_archives(config: Config) -> dict[Path, Sealed]:
    """Write every archive root's manifests; what each pass found and hashed."""
    try:
        agent = f"Hirondelle {version('hirondelle')}"
    except PackageNotFoundError:
        agent = "Hirondelle"
    sealed = {}
    for root, workloads in archive_roots(config).items():
        what = ", ".join(BY_NAME[w].title if w in BY_NAME else w for w in workloads)
        description = (
            f"Microsoft 365 {what}, archived in standard formats by {agent} (see README.txt)"
        )
        organization = f"Microsoft 365 tenant {config.source.tenant_id}"
        try:
            result = await asyncio.to_thread(seal, root, organization, description, agent)
        except OSError as error:
            raise _unwritable(root, workloads, error) from None
        log.info(
            "archive %s sealed: %d files, %d bytes (%d files, %d bytes hashed again)",
            root,
            result.files,
            result.bytes,
            result.hashed_files,
            result.hashed_bytes,
        )
        sealed[root] = result
    return sealed
