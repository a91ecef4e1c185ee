"""One place that applies HTTPS_PROXY / NO_PROXY / CA_BUNDLE to every HTTP client.

httpx (PTB) and aiohttp (our fetcher) take an SSL context; requests (instaloader) reads
REQUESTS_CA_BUNDLE and the proxy variables from the environment; yt-dlp gets the
proxy as an option and the CA file through its ssl context. CA_BUNDLE holds
*extra* authorities, so they are added to the system store, never replace it.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import certifi


@dataclass(frozen=True)
class Network:
    """Proxy and certificate settings, shared by all outbound clients."""

    proxy: str | None = None
    no_proxy: str | None = None
    ca_bundle: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """System and certifi roots plus the extra CA_BUNDLE authorities."""
        context = ssl.create_default_context(cafile=certifi.where())
        context.load_default_certs()
        if self.ca_bundle is not None:
            context.load_verify_locations(cafile=str(self.ca_bundle))
        return context

    def proxy_for(self, url: str) -> str | None:
        """The proxy to use for ``url``, honouring NO_PROXY (httpx ignores it with an explicit proxy)."""
        if not self.proxy:
            return None
        host = urlsplit(url).hostname or ""
        if self.no_proxy and urllib.request.proxy_bypass_environment(host, {"no": self.no_proxy}):
            return None
        return self.proxy

    def merged_bundle(self, directory: Path) -> Path | None:
        """Write certifi + CA_BUNDLE into one PEM file for libraries that take a path."""
        if self.ca_bundle is None:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "ca-bundle.pem"
        extra = Path(self.ca_bundle).read_text()
        # Atomic: workers sharing DATA_DIR write this file at the same moment.
        temp = directory / f".ca-bundle.{os.getpid()}.tmp"
        temp.write_text(Path(certifi.where()).read_text() + "\n" + extra)
        os.replace(temp, target)
        return target

    def apply_to_environment(self, data_dir: Path) -> None:
        """Export settings for libraries that only read the environment (requests)."""
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            os.environ.pop(name, None)
        if self.proxy:
            os.environ["HTTPS_PROXY"] = os.environ["https_proxy"] = self.proxy
        if self.no_proxy:
            os.environ["NO_PROXY"] = os.environ["no_proxy"] = self.no_proxy
        bundle = self.merged_bundle(Path(data_dir))
        if bundle is not None:
            # requests lets REQUESTS_CA_BUNDLE override Session.verify, so set it, not verify.
            os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
            os.environ["SSL_CERT_FILE"] = str(bundle)
