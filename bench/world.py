"""The fake outside world the benchmarks run against, and how child processes reach it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import certifi

from tests.fakes.instagram import FakeInstagram, FakeProfile, write_session_file
from tests.fakes.tls import FakeInternet

ROOT = Path(__file__).resolve().parent.parent
SESSION_USER = "archivebot"


class BenchInstagram(FakeInstagram):
    """FakeInstagram whose CDN index is built once instead of on every media request.

    The test fake rebuilds a URL -> size index of every profile per CDN request; with
    thousands of posts that costs the fake more CPU than the client under test spends.
    """

    _index: dict[str, int] | None = None

    def add_profile(self, profile: FakeProfile) -> FakeProfile:
        """Serve ``profile`` and drop the cached index."""
        self._index = None
        return super().add_profile(profile)

    def _media_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = super()._media_index()
        return self._index

    def cdn_bytes(self) -> int:
        """Bytes of the media files the CDN was asked for since the last clear()."""
        index = self._media_index()
        return sum(index.get(request.path, 0) for request in self.cdn_requests())


@contextmanager
def fake_instagram(
    latency: float = 0.0, bandwidth: int | None = None
) -> Iterator[tuple[FakeInternet, BenchInstagram]]:
    """A started FakeInternet with a BenchInstagram on it and the given network conditions."""
    with FakeInternet() as net:
        net.latency, net.bandwidth = latency, bandwidth
        yield net, BenchInstagram(net)


def session_file(instagram: FakeInstagram, folder: Path) -> Path:
    """What ``instaloader --login archivebot`` would write, for a session the fake accepts."""
    return write_session_file(folder / f"session-{SESSION_USER}", instagram.login(SESSION_USER))


def child_env(net: FakeInternet) -> dict[str, str]:
    """This process's environment pointed at the fake (proxy and test CA)."""
    env = os.environ | net.env
    env["PYTHONPATH"] = str(ROOT)
    return env


def with_public_roots(env: dict[str, str], net: FakeInternet, folder: Path) -> dict[str, str]:
    """``env`` trusting certifi's roots plus the test CA, as a real instaloader (and our bot) would.

    requests loads its CA file again for every new connection; certifi's ~150 roots cost
    tens of milliseconds each time, a test CA alone almost nothing. Our bot trusts
    certifi + CA_BUNDLE, so the reference must pay for the same file to be fair.
    """
    bundle = folder / "certifi-plus-test-ca.pem"
    bundle.write_text(Path(certifi.where()).read_text() + "\n" + Path(net.ca_path).read_text())
    return env | {name: str(bundle) for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}


@dataclass
class ChildRun:
    """One finished child process."""

    seconds: float
    stdout: str
    stderr: str
    returncode: int


class ChildFailed(RuntimeError):
    """A child process exited non-zero (the message carries the tail of its stderr)."""


def run_child(
    argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float, check: bool = True
) -> ChildRun:
    """Run ``argv`` to its end; wall time is measured from spawn to exit."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    run = ChildRun(time.perf_counter() - start, done.stdout, done.stderr, done.returncode)
    if check and done.returncode != 0:
        raise ChildFailed(f"{Path(argv[1]).name} exited {done.returncode}: {done.stderr.strip()[-600:]}")
    return run


def python() -> str:
    """The interpreter running the bench (the project's venv)."""
    return sys.executable
