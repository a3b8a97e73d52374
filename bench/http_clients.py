"""The cheapest HTTP client for bulk downloads: httpx against aiohttp on the same streams.

    python -m hirondelle.bench.http_clients --quick   # 300 small files and a 200 MB file

A files-benchmark sandbox (its own process, HTTPS, throttling off) serves a OneDrive;
the pre-authenticated download links of its files are asked of Graph first (not
timed). Then each client, in turns, downloads the same links `--concurrency` at a
time over one keep-alive pool with the same TLS context, reading the bodies in chunks
and dropping them (no hashing, no disk): what is measured is the client alone. Each
turn reports wall seconds and this process's CPU seconds (`time.process_time`); the
best of `--rounds` turns per client and set is kept. The last line is one JSON object:
`<client>_<set>_cpu_ms_per_file`, `..._cpu_s_per_gb`, `..._mb_per_s`, and the sandbox's
shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from hirondelle.bench._files_sandbox import DriveShape
from hirondelle.bench._servers import SandboxEndpoint, SandboxProcess, stop_live

SCOPE = "https://graph.microsoft.com/.default"
CHUNK = 1 << 20
Fetch = Callable[[str], Awaitable[int]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hirondelle.bench.http_clients")
    parser.add_argument("--files", type=int, default=1000, help="small files (default 1,000)")
    parser.add_argument("--large-bytes", type=int, default=1_000_000_000, help="default 1 GB")
    parser.add_argument("--concurrency", type=int, default=4, help="downloads at once")
    parser.add_argument("--rounds", type=int, default=3, help="turns per client (best kept)")
    parser.add_argument("--quick", action="store_true", help="300 small files, 200 MB")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.large_bytes = 300, 200_000_000
    return args


def tls_context(endpoint: SandboxEndpoint) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=endpoint.ca_file)


async def links(endpoint: SandboxEndpoint, tls: ssl.SSLContext) -> list[tuple[str, int]]:
    """(download URL, size) of every file of the first user's OneDrive (Graph's 302s)."""
    authority = endpoint.authority
    base = authority if authority.startswith("https://") else f"https://{authority}"
    async with httpx.AsyncClient(verify=tls, timeout=60) as client:
        form = {
            "grant_type": "client_credentials",
            "client_id": endpoint.client_id,
            "client_secret": endpoint.client_secret,
            "scope": SCOPE,
        }
        answer = await client.post(f"{base}/{endpoint.tenant_id}/oauth2/v2.0/token", data=form)
        client.headers["Authorization"] = (
            f"Bearer {answer.raise_for_status().json()['access_token']}"
        )
        users = (await client.get(f"{endpoint.graph_url}/users")).raise_for_status().json()
        upn = users["value"][0]["userPrincipalName"]
        url: str | None = f"{endpoint.graph_url}/users/{upn}/drive/root/delta"
        items: list[dict[str, Any]] = []
        while url:
            page = (await client.get(url)).raise_for_status().json()
            items += [item for item in page["value"] if "file" in item and item.get("size")]
            url = page.get("@odata.nextLink")
        found = []
        for item in items:
            drive = item["parentReference"]["driveId"]
            content = f"{endpoint.graph_url}/drives/{drive}/items/{item['id']}/content"
            answer = await client.get(content)
            found.append((answer.headers["Location"], int(item["size"])))
        return found


async def timed(fetch: Fetch, urls: list[str], concurrency: int) -> tuple[float, float, int]:
    """(wall s, CPU s, bytes) of downloading `urls`, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str) -> int:
        async with gate:
            return await fetch(url)

    wall, cpu = time.perf_counter(), time.process_time()
    received = sum(await asyncio.gather(*(one(url) for url in urls)))
    return time.perf_counter() - wall, time.process_time() - cpu, received


async def with_httpx(tls: ssl.SSLContext, urls: list[str], concurrency: int) -> Any:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(verify=tls, limits=limits, timeout=300) as client:

        async def fetch(url: str) -> int:
            size = 0
            headers = {"Accept-Encoding": "identity"}
            async with client.stream("GET", url, headers=headers) as response:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
            return size

        return await timed(fetch, urls, concurrency)


async def with_aiohttp(tls: ssl.SSLContext, urls: list[str], concurrency: int) -> Any:
    connector = aiohttp.TCPConnector(ssl=tls, limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def fetch(url: str) -> int:
            size = 0
            headers = {"Accept-Encoding": "identity"}
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                async for chunk in response.content.iter_chunked(CHUNK):
                    size += len(chunk)
            return size

        return await timed(fetch, urls, concurrency)


CLIENTS = {"httpx": with_httpx, "aiohttp": with_aiohttp}


def measure(endpoint: SandboxEndpoint, args: argparse.Namespace) -> dict[str, float]:
    tls = tls_context(endpoint)
    found = asyncio.run(links(endpoint, tls))
    large = [url for url, size in found if size >= args.large_bytes]
    small = [url for url, size in found if size < args.large_bytes]
    figures: dict[str, float] = {"small_files": len(small)}
    for name, urls in (("small", small), ("large", large)):
        for _ in range(args.rounds):
            for client, run in CLIENTS.items():
                wall, cpu, size = asyncio.run(run(tls, urls, args.concurrency))
                key = f"{client}_{name}"
                if wall < figures.get(f"{key}_seconds", float("inf")):
                    figures[f"{key}_seconds"] = round(wall, 3)
                    figures[f"{key}_mb_per_s"] = round(size / wall / 1e6, 1)
                if cpu < figures.get(f"{key}_cpu_s", float("inf")):
                    figures[f"{key}_cpu_s"] = round(cpu, 3)
                    figures[f"{key}_cpu_ms_per_file"] = round(1000 * cpu / len(urls), 3)
                    figures[f"{key}_cpu_s_per_gb"] = round(cpu / size * 1e9, 2)
                mb = size / 1e6
                print(f"{key}: {len(urls)} files, {mb:.1f} MB in {wall:.2f} s, CPU {cpu:.2f} s")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hirondelle-http-")))
        stack.callback(stop_live)
        sandbox = SandboxProcess(DriveShape(args.files, args.large_bytes, 7), work / "sandbox.log")
        stack.callback(sandbox.stop)
        endpoint = sandbox.start()
        result = {"files": args.files, "large_bytes": args.large_bytes, "cpus": os.cpu_count()}
        result.update(measure(endpoint, args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
