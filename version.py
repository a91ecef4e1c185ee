"""The bot's version: `bot.py --version`, /status and backups show it (keep pyproject.toml's in step)."""

VERSION = "0.2.0"
