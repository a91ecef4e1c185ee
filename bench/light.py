"""Figure 11: light on a small machine, each measured process pinned to one core (``taskset -c 0``).

- CPU of a full download: user+sys seconds of our download process (``bench.worker``) and of
  the ``instaloader`` CLI for the same profile, against the same fake, no latency; the fake
  runs in this process, so neither side's figure includes it;
- start-up: wall time of ``bot.py --help`` and ``bot.py download --help`` (median);
- an idle bot: the real ``bot.py`` against the fake Telegram with 1,000 tracked accounts in its
  database, once it is idle: resident memory and the CPU share over ``idle_seconds``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.instagram import INSTALOADER_FLAGS, USERNAME
from bench.sizes import Size
from bench.table import Row, Section, seconds, times
from bench.world import (
    ROOT,
    SESSION_USER,
    child_env,
    fake_instagram,
    python,
    session_file,
    with_public_roots,
)
from tests.fakes.instagram import make_profile

PIN = ["taskset", "-c", "0"]
ACCOUNTS = 1_000
HELP_TARGET = 0.3  # seconds
RSS_TARGET = 150  # MiB
IDLE_TARGET = 1.0  # percent of one core
TICK = os.sysconf("SC_CLK_TCK")


# Whether measured processes go to core 0: at --size full when taskset exists. The small size
# only shows that the figure runs, and pinned it would queue behind whatever else uses core 0.
_pin = {"on": False}


def pinned(argv: list[str]) -> list[str]:
    """``argv`` on core 0 when pinning (a Raspberry Pi-class single core stand-in)."""
    return [*PIN, *argv] if _pin["on"] else argv


def _core() -> str:
    """The label's suffix: where the measured processes ran."""
    return ", one core" if _pin["on"] else ""


def _has_taskset() -> bool:
    return any((Path(p) / "taskset").exists() for p in os.environ.get("PATH", "").split(os.pathsep))


def child_cpu(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> tuple[float, float]:
    """Run ``argv`` to its end: (wall seconds, user+sys CPU seconds of it and what it waited for)."""
    with tempfile.TemporaryFile() as errors:  # a pipe could fill up with progress bars and block it
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            # wait4 gives this child's own rusage (not the sum over every child this process reaped).
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} exited {process.returncode}: {stderr.strip()[-600:]}")
    return wall, usage.ru_utime + usage.ru_stime


def run(size: Size) -> Section:
    """The three parts of figure 11 (the full download, start-up, an idle bot)."""
    _pin["on"] = size.name == "full" and _has_taskset()
    rows: list[Row] = []
    notes: list[str] = []
    rows += _download_cpu(size, notes)
    rows += _help_times(size, notes)
    rows += _idle_bot(size, notes)
    if not _pin["on"]:
        notes.append("Light: not pinned to one core (taskset missing, or not --size full).")
    return Section(rows, notes)


def _download_cpu(size: Size, notes: list[str]) -> list[Row]:
    posts = size.light_posts
    media = {"image_size": size.image_size, "video_size": size.video_size}
    profile = make_profile(USERNAME, 1001, posts=posts, stories=size.stories, **media)
    with tempfile.TemporaryDirectory(prefix="bench-light-") as tmp, fake_instagram() as (net, instagram):
        instagram.add_profile(profile)
        work = Path(tmp)
        session = session_file(instagram, work / "sessions")
        env = child_env(net)
        target = work / "instaloader"
        target.mkdir()
        data = work / "data"
        data.mkdir()
        asyncio.run(_fill(f"sqlite://{data / 'archive.sqlite3'}", accounts=0))  # the bot's database exists
        ours_env = _cli_env(env, data, session)
        ours_argv = [python(), str(ROOT / "bot.py"), "download", USERNAME]
        ref_argv = [python(), str(ROOT / "bench" / "instaloader_cli.py"), "--sessionfile", str(session)]
        ref_argv += ["--login", SESSION_USER, *INSTALOADER_FLAGS, USERNAME]
        full = size.name == "full"  # the small size only shows that the figure runs
        if full:
            warm = [python(), "-c", "import services, instaloader.__main__"]  # a warm disk cache for both
            child_cpu(warm, env=env, cwd=ROOT, timeout=120)
        ours_wall, ours = child_cpu(pinned(ours_argv), env=ours_env, cwd=work, timeout=600)
        ours_files = instagram.cdn_count()
        net.clear()
        ref_env = with_public_roots(env, net, work)
        ref_wall, ref = child_cpu(pinned(ref_argv), env=ref_env, cwd=target, timeout=600)
        ref_files = instagram.cdn_count()
        # The same again trusting the test CA alone: requests then loads a tiny CA file per new
        # connection instead of certifi's roots, the least instaloader can cost here.
        bare = None
        if full:
            shutil.rmtree(target)
            target.mkdir()
            bare = child_cpu(pinned(ref_argv), env=env, cwd=target, timeout=600)[1]
    notes.append(
        f"Light, download CPU: {posts} posts + {size.stories} stories + highlights, no added latency; "
        f"ours fetched {ours_files} media files in {seconds(ours_wall)}, instaloader {ref_files} in "
        f"{seconds(ref_wall)} (wall). CPU is user+sys of the measured process (wait4), "
        "whole process including start-up; the fake servers run in the bench process and are not counted. "
        "Ours is the real `bot.py download` with a data folder whose database exists already (the "
        "bot's; creating and migrating a new one costs about 1 CPU s once). instaloader's CPU is given "
        "trusting certifi's roots plus the test CA (as a real install trusts certifi; requests reads that "
        "file for every new connection, and instaloader opens one per media file) and the test CA alone."
    )
    return [
        Row(
            f"11. Light: CPU of a full download ({posts} posts){_core()}",
            f"{ours:.2f} s",
            f"instaloader CLI {ref:.2f} s" + (f" ({bare:.2f} s trusting only the test CA)" if bare else ""),
            times(ours / ref) + (f" ({times(ours / bare)})" if bare else ""),
            "≤ 1.0×",
            ours <= ref,
        )
    ]


def _help_times(size: Size, notes: list[str]) -> list[Row]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-help-") as tmp:
        env |= {"DATA_DIR": str(Path(tmp) / "data")}
        base = [python(), "-c", "pass"]
        bare = statistics.median(
            child_cpu(pinned(base), env=env, cwd=Path(tmp), timeout=60)[0] for _ in range(size.light_repeats)
        )
        for args in (["--help"], ["download", "--help"]):
            argv = pinned([python(), str(ROOT / "bot.py"), *args])
            wall = statistics.median(
                child_cpu(argv, env=env, cwd=Path(tmp), timeout=60)[0] for _ in range(size.light_repeats)
            )
            rows.append(
                Row(
                    f"11. Light: `bot.py {' '.join(args)}` wall time{_core()}",
                    seconds(wall),
                    f"`python -c pass` {seconds(bare)}",
                    times(wall / bare),
                    f"< {HELP_TARGET:g} s",
                    wall < HELP_TARGET,
                )
            )
    notes.append(f"Light, start-up: median of {size.light_repeats} runs each.")
    return rows


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _proc_cpu(pid: int) -> float:
    """user+sys seconds of a live process from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _idle_bot(size: Size, notes: list[str]) -> list[Row]:
    from tests.fakes.telegram import FakeTelegram
    from tests.harness import OWNER, TOKEN

    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        data.mkdir()
        url = f"sqlite://{data / 'archive.sqlite3'}"
        asyncio.run(_fill(url))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
        with FakeTelegram(TOKEN) as telegram:
            env |= {
                "DATA_DIR": str(data),
                "DATABASE_URL": url,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": telegram.url,
                "ALLOWED_USER_IDS": str(OWNER),
                "WEB_PORT": str(_free_port()),
                "LOG_LEVEL": "WARNING",
            }
            log = (folder / "bot.log").open("w")
            bot = subprocess.Popen(
                pinned([python(), str(ROOT / "bot.py")]), cwd=folder, env=env, stdout=log, stderr=log
            )
            try:
                telegram.wait_for("setMyCommands", timeout=60)
                settle = _wait_idle(bot.pid, min(1.0, size.idle_seconds / 2))
                before, start = _proc_cpu(bot.pid), time.monotonic()
                time.sleep(size.idle_seconds)  # the measured window itself: nothing to wait for
                used, window = _proc_cpu(bot.pid) - before, time.monotonic() - start
                rss = _proc_rss_mib(bot.pid)
            finally:
                bot.terminate()
                try:
                    bot.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    bot.kill()
                    bot.wait()
                log.close()
    share = 100 * used / window
    notes.append(
        f"Light, idle bot: the real bot.py on SQLite with {ACCOUNTS:,} tracked accounts, idle {settle:.1f} s "
        f"after its commands were set; measured over {window:.0f} s ({used:.2f} CPU s; /proc/<pid>/stat "
        "and status of the bot's process)."
    )
    return [
        Row(
            f"11. Light: idle bot with {ACCOUNTS:,} accounts, resident memory",
            f"{rss:.0f} MiB",
            target=f"< {RSS_TARGET} MiB",
            met=rss < RSS_TARGET,
        ),
        Row(
            f"11. Light: idle bot, CPU share over {window:.0f} s",
            f"{share:.2f}% of a core",
            target=f"< {IDLE_TARGET:g}%",
            met=share < IDLE_TARGET,
        ),
    ]


def _wait_idle(pid: int, window: float, timeout: float = 30.0) -> float:
    """Seconds until a ``window`` costs the process under 2% of a core (start-up work done)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = _proc_cpu(pid)
        time.sleep(window)
        if _proc_cpu(pid) - before < 0.02 * window:
            break
    return time.monotonic() - start


def _cli_env(env: dict[str, str], data: Path, session: Path) -> dict[str, str]:
    """``bot.py download`` configured as a user would: the fake's proxy and CA, the session file."""
    clean = {k: v for k, v in env.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    return clean | {
        "DATA_DIR": str(data),
        "INSTAGRAM_SESSION_FILE": str(session),
        "INSTAGRAM_USERNAME": SESSION_USER,
        "INSTAGRAM_REQUEST_DELAY": "0",
        "TELEGRAM_BOT_TOKEN": "123456:BENCH-TOKEN-NOT-USED",
    }


async def _fill(url: str, accounts: int = ACCOUNTS) -> None:
    """Create (migrate) the database at ``url``, with ``accounts`` tracked accounts."""
    from db import close_database, open_database
    from tests.history import insert_archive

    await open_database(url)
    try:
        if accounts:
            await insert_archive(url, 5 * accounts, accounts)
    finally:
        await close_database()


if __name__ == "__main__":
    from bench.sizes import SIZES

    section = run(SIZES[sys.argv[1] if len(sys.argv) > 1 else "full"])
    for row in section.rows:
        print(row.cells())
    print("\n".join(section.notes))
