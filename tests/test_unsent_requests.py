"""Which failed requests never reached Instagram (and so are not counted in the budget):
real `requests` errors against ports on this machine."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
from instaloader.exceptions import ConnectionException

from downloader.sources.instagram.ratecontrol import never_reached
from tests.fakes.outage import free_port


def get(url: str, **options):
    """A GET that ignores this machine's proxy settings (only ``proxies`` given here apply)."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, **options)


def error_of(call) -> BaseException:
    with pytest.raises(requests.RequestException) as caught:
        call()
    return caught.value


class Server:
    """A TCP server on 127.0.0.1 that reads a request, then hangs up (``close``) or says nothing."""

    def __init__(self, close: bool):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.close = close
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            if self.close:
                conn.close()
            else:
                self.held.append(conn)

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_refused_connection_and_a_refusing_proxy_never_reached_instagram():
    port = free_port()
    refused = error_of(lambda: get(f"http://127.0.0.1:{port}/", timeout=5))
    assert never_reached(refused)
    proxies = {"https": f"http://127.0.0.1:{port}"}
    no_proxy = error_of(lambda: get("https://www.instagram.com/", proxies=proxies, timeout=5))
    assert isinstance(no_proxy, requests.exceptions.ProxyError) and never_reached(no_proxy)
    try:
        raise ConnectionException("JSON Query to api/v1/...: refused") from refused  # as instaloader wraps it
    except ConnectionException as wrapped:
        assert never_reached(wrapped)


def test_a_request_that_was_sent_and_got_no_answer_counts():
    cut, silent = Server(close=True), Server(close=False)
    try:
        dropped = error_of(lambda: get(f"http://127.0.0.1:{cut.port}/", timeout=5))
        assert isinstance(dropped, requests.ConnectionError) and not never_reached(dropped)
        late = error_of(lambda: get(f"http://127.0.0.1:{silent.port}/", timeout=0.5))
        assert isinstance(late, requests.exceptions.ReadTimeout) and not never_reached(late)
    finally:
        cut.stop()
        silent.stop()
    assert not never_reached(None) and not never_reached(ValueError("not a request"))
