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
import contextlib
import os
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
from tests.fakes.outage import free_port

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
    with (
        tempfile.TemporaryDirectory(prefix="bench-light-") as tmp,
        _fakes_off_core_0(),
        fake_instagram() as (net, instagram),
    ):
        instagram.add_profile(profile)
        cpu, last = _rounds(size, Path(tmp), net, instagram)
    ours, ref = statistics.median(cpu["ours"]), statistics.median(cpu["ref"])
    bare = statistics.median(cpu["bare"]) if cpu["bare"] else None
    notes.append(
        f"Light, download CPU: {posts} posts + {size.stories} stories + highlights, no added latency; "
        f"{last} CPU is user+sys of the measured process (wait4), whole process including start-up, "
        f"the median of {size.light_rounds} interleaved rounds (ours {_list(cpu['ours'])}; instaloader "
        f"{_list(cpu['ref'])}"
        + (f"; trusting only the test CA {_list(cpu['bare'])})" if bare else ")")
        + ". The fake servers run in the bench process, kept off the measured core, and are not counted. "
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
            ours <= ref and (bare is None or ours <= bare),
        )
    ]


def _rounds(size: Size, work: Path, net, instagram) -> tuple[dict[str, list[float]], str]:
    """CPU seconds of each side per round (ours, instaloader, instaloader on the test CA alone,
    the last at --size full only); a sentence on the last round's files and wall times. Rounds
    interleave the sides, so a noisy neighbour on a shared machine slows both alike."""
    session = session_file(instagram, work / "sessions")
    env = child_env(net)
    full = size.name == "full"  # the small size only shows that the figure runs
    if full:
        warm = [python(), "-c", "import services, instaloader.__main__"]  # a warm disk cache for both
        child_cpu(warm, env=env, cwd=ROOT, timeout=120)
    cpu: dict[str, list[float]] = {"ours": [], "ref": [], "bare": []}
    for round_ in range(size.light_rounds):
        folder = work / f"round-{round_}"
        ours_wall, ours, ours_files = _ours_once(folder, env, session, instagram)
        net.clear()
        ref_env, ref_dir = with_public_roots(env, net, folder), _empty(folder / "instaloader")
        ref_wall, ref = child_cpu(pinned(_instaloader_argv(session)), env=ref_env, cwd=ref_dir, timeout=600)
        ref_files = instagram.cdn_count()
        cpu["ours"].append(ours)
        cpu["ref"].append(ref)
        # The same again trusting the test CA alone: requests then loads a tiny CA file per new
        # connection instead of certifi's roots, the least instaloader can cost here.
        if full:
            argv, bare_dir = pinned(_instaloader_argv(session)), _empty(folder / "bare")
            cpu["bare"].append(child_cpu(argv, env=env, cwd=bare_dir, timeout=600)[1])
    last = (
        f"ours fetched {ours_files} media files in {seconds(ours_wall)}, instaloader {ref_files} in "
        f"{seconds(ref_wall)} (wall, last round)."
    )
    return cpu, last


def _ours_once(folder: Path, env: dict[str, str], session: Path, instagram) -> tuple[float, float, int]:
    """One `bot.py download` into a new data folder (its database made beforehand): wall, CPU, files."""
    data = folder / "data"
    data.mkdir(parents=True)
    asyncio.run(_fill(f"sqlite://{data / 'archive.sqlite3'}", accounts=0))  # the bot's database exists
    before = instagram.cdn_count()
    argv = pinned([python(), str(ROOT / "bot.py"), "download", USERNAME])
    wall, cpu = child_cpu(argv, env=_cli_env(env, data, session), cwd=folder, timeout=600)
    return wall, cpu, instagram.cdn_count() - before


def _instaloader_argv(session: Path) -> list[str]:
    argv = [python(), str(ROOT / "bench" / "instaloader_cli.py"), "--sessionfile", str(session)]
    return [*argv, "--login", SESSION_USER, *INSTALOADER_FLAGS, USERNAME]


def _empty(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"


@contextlib.contextmanager
def _fakes_off_core_0():
    """While pinning, this process (the fake servers' threads start in it) avoids core 0, so the
    measured process has that core to itself."""
    others = os.sched_getaffinity(0) - {0}
    if not (_pin["on"] and others):
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, others)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


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
                "WEB_PORT": str(free_port()),
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
