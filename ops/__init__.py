"""Maintenance commands of `bot.py` (backup, restore, doctor); each module loads when its command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.py builds its --help from add_parsers without loading the settings' libraries
    from config import Settings

COMMANDS = ("backup", "restore", "doctor")


def add_parsers(sub) -> None:
    """backup, restore and doctor (README, "Backups" and "Checking the set-up")."""
    backup = sub.add_parser(
        "backup",
        help="write the database, login files and archive marker to a new folder (the bot may run)",
    )
    backup.add_argument("dest", type=Path, help="a new or empty folder")
    restore = sub.add_parser("restore", help="put a backup back (stop the bot first)")
    restore.add_argument("src", type=Path, help="a folder written by backup")
    restore.add_argument("--force", action="store_true", help="replace a database that holds accounts")
    sub.add_parser("doctor", help="check everything the bot depends on, with how to fix each")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run backup, restore or doctor; return the exit code."""
    if args.command == "backup":
        from ops.backup import backup_command

        return backup_command(settings, args.dest)
    if args.command == "restore":
        from ops.restore import restore_command

        return restore_command(settings, args.src, args.force)
    from ops.doctor import doctor_command

    return doctor_command(settings)
