"""The WebDAV target's own cost per small file: `WebDavSession.put_many` into `rclone serve`.

    python -m hirondelle.bench.webdav_puts            # 2,000 files, three rounds
    python -m hirondelle.bench.webdav_puts --files 500 --rounds 1

No source and no engine: in-memory payloads of 2 to 62 KB (files the downloader holds in
memory, as the files benchmark's small set mostly is) are put in batches of `--batch`,
`--uploads` at once, the way the engine's writer hands a page to the target, each round
into a fresh drive folder of one user of `rclone serve webdav` (the files benchmark's
server). What is measured is this process's CPU (`time.process_time`: every thread, so
the upload threads' HTTP requests, PUT to the part name and MOVE) a file, the client side
of the target alone; `rclone serve`'s CPU is printed beside it. The first file of each
round goes alone (it shows whether the server keeps `X-OC-Mtime`) and is not counted. The
best round is kept; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hirondelle.bench._servers import child_serving, cpu_seconds, guarded_run
from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
from hirondelle.connectors.webdav_session import WebDavSession
from hirondelle.migrator.model import Blob, Container, Owner, Payload
from hirondelle.tests.servers import RcloneDavServer

MTIME = datetime(2021, 3, 14, 15, 9, 26, tzinfo=UTC)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="files a round (default 2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the best kept (default 3)")
    parser.add_argument("--batch", type=int, default=40, help="files a put_many (default 40)")
    parser.add_argument("--uploads", type=int, default=4, help="[targets.files] uploads")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def payloads(count: int, seed: int) -> list[Payload]:
    """`count` files of 2 to 62 KB held in memory, as the downloader hands small files over."""
    chance = random.Random(seed)
    made = []
    for index in range(count):
        content = chance.randbytes(chance.randint(2_000, 62_000))
        digest = hashlib.sha256(content).hexdigest()
        attrs = {"kind": "file", "path": f"f{index:05}.bin", "mtime": MTIME}
        blob = Blob(None, len(content), {"sha256": digest}, data=content)
        made.append(
            Payload(
                f"item-{index}",
                b"",
                f"sha256:{digest}",
                {**attrs, "size": len(content), "quickXorHash": None},
                blob=blob,
            )
        )
    return made


def one_round(session: WebDavSession, name: str, files: list[Payload], batch: int) -> float:
    """CPU seconds of this process to put `files[1:]` into a fresh folder `name`."""
    folder = session.ensure_container(Container("files", "bench", name, (name,), "personal"))
    session.put_many(folder, files[:1])
    started = time.process_time()
    for first in range(1, len(files), batch):
        results = session.put_many(folder, files[first : first + batch])
        refused = [result for result in results if isinstance(result, Exception)]
        if refused:
            raise RuntimeError(f"the server refused a file: {refused[0]}")
    return time.process_time() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    files = payloads(args.files, args.seed)
    with tempfile.TemporaryDirectory(prefix="hirondelle-bench-") as temporary:
        server = RcloneDavServer(spare_users=1, start_timeout=30)
        server.start()
        try:
            user = server.new_user()
            passwords = server.password_file(Path(temporary) / "passwords", user)
            settings = WebDavSettings(url=server.url, password_file=passwords, uploads=args.uploads)
            session = WebDavTarget(settings).open(Owner(user.login, "bench"))
            rclone = child_serving(server.data_dir)
            best: dict[str, Any] = {}
            try:
                for number in range(1, args.rounds + 1):
                    server_before, wall = cpu_seconds(rclone), time.perf_counter()
                    cpu = one_round(session, f"round-{number}", files, args.batch)
                    wall = time.perf_counter() - wall
                    counted = len(files) - 1
                    figures = {
                        "cpu_ms_per_file": round(cpu / counted * 1000, 3),
                        "files_per_s": round(counted / wall, 1),
                        "server_cpu_ms_per_file": round(
                            (cpu_seconds(rclone) - server_before) / counted * 1000, 3
                        ),
                    }
                    print(f"round {number}: {figures}", flush=True)
                    if not best or figures["cpu_ms_per_file"] < best["cpu_ms_per_file"]:
                        best = figures
            finally:
                session.close()
        finally:
            server.stop()
    return {**best, "files": args.files, "batch": args.batch, "uploads": args.uploads}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = guarded_run(lambda: run(args))
    if isinstance(result, int):
        return result
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
