"""Child process: one download by our real service (harness.services_for + run_download).

``python -m bench.worker DATA_DIR SESSION_FILE USERNAME [--concurrency N]`` with the fake's proxy and CA in
the environment (HTTPS_PROXY, CA_BUNDLE); prints one JSON line: state, files per phase,
seconds inside run_download, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from pathlib import Path
from types import SimpleNamespace

from tests.harness import make_settings, run_download, services_for


def peak_rss_kib() -> int:
    """This process's own high-water RSS in KiB.

    Not getrusage's ru_maxrss: Linux carries the parent's RSS across fork/exec into the
    child's ru_maxrss, so a large bench parent would inflate every child's figure.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def download(data_dir: Path, session: Path, username: str, concurrency: int | None = None) -> dict:
    """Open the services as the bot does, run one job, close; report what happened."""
    fake = SimpleNamespace(proxy_url=os.environ["HTTPS_PROXY"], ca_path=os.environ["CA_BUNDLE"])
    # None: the default DOWNLOAD_CONCURRENCY from config.py, as a user who sets nothing gets.
    chosen = {} if concurrency is None else {"download_concurrency": concurrency}
    settings = make_settings(data_dir, net=fake, instagram_session_file=session, **chosen)
    services = await services_for(settings)
    try:
        start = time.perf_counter()
        result = await run_download(services, "instagram", username)
        seconds = time.perf_counter() - start
    finally:
        await services.close()
    return {
        "state": result.state,
        "error": result.error,
        "phases": {p.phase: [p.status, p.downloaded, p.archived, p.failed] for p in result.phases},
        "files": result.new_items,
        "seconds": seconds,
        "peak_rss_kib": peak_rss_kib(),
    }


def main() -> None:
    """Parse the command line, run, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("session_file", type=Path)
    parser.add_argument("username")
    parser.add_argument("--concurrency", type=int, help="DOWNLOAD_CONCURRENCY (default: config.py's)")
    args = parser.parse_args()
    report = asyncio.run(download(args.data_dir, args.session_file, args.username, args.concurrency))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
