"""Maintenance commands of `bot.py` (backup, restore, doctor), imported only when one runs."""
