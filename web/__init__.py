"""The private web gallery and download manager, served by the bot process (aiohttp + Jinja2)."""
