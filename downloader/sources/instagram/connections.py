"""instaloader's short-lived sessions, sharing the login session's kept-alive connections.

instaloader sends every GraphQL page and every i.instagram.com request through a fresh copy
of its session (``instaloadercontext.copy_session``: other headers, same cookies) and closes
it afterwards, so each of those requests opens a new TLS connection to Instagram: a
handshake, and with a CA file (``CA_BUNDLE``) a CA file read, for one request. Here the copy
sends through the login session's own adapters, which its closing leaves open; the
headers and cookies of each request stay exactly as instaloader builds them.
"""

from __future__ import annotations

import functools
import logging

import requests
from instaloader import instaloadercontext

log = logging.getLogger(__name__)


class SharedAdapter(requests.adapters.BaseAdapter):
    """Sends through another session's adapter (its connection pools); closing it closes nothing."""

    def __init__(self, adapter: requests.adapters.BaseAdapter):
        super().__init__()
        self.adapter = adapter

    def send(self, request, **kwargs):
        """The request, on one of the shared adapter's connections."""
        return self.adapter.send(request, **kwargs)

    def close(self) -> None:
        """The shared pools belong to the login session: left open."""


def share_connections() -> None:
    """Make instaloader's session copies reuse the copied session's connections (once per process)."""
    copy = getattr(instaloadercontext, "copy_session", None)
    if copy is None or getattr(copy, "shares_connections", False):
        if copy is None:  # a newer instaloader without it: each request then connects anew
            log.debug("instaloader has no copy_session; connections are not shared")
        return

    @functools.wraps(copy)
    def copy_sharing(session: requests.Session, *args, **kwargs) -> requests.Session:
        new = copy(session, *args, **kwargs)
        for prefix, adapter in session.adapters.items():
            new.mount(prefix, SharedAdapter(getattr(adapter, "adapter", adapter)))
        return new

    copy_sharing.shares_connections = True  # type: ignore[attr-defined]
    instaloadercontext.copy_session = copy_sharing
