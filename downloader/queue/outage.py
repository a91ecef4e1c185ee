"""A task queue that goes away while running: one log line per attempt, never a traceback.

Redis: the worker's listener dies with the connection and is started again (worker.py).
RabbitMQ: aio-pika's robust connection reconnects by itself every few seconds and gives
consumers back; its own log (several tracebacks per connection, several connections per
process) is replaced here by the lines the bot writes for a broker that is down at start.
"""

from __future__ import annotations

import logging
import time

from taskiq import AckableMessage
from taskiq.receiver import Receiver

from downloader.queue.broker import where

log = logging.getLogger("downloader.queue.broker")
SAME_ATTEMPT = 2.0  # seconds: lines about one broker within this window are one attempt
BACK = "the task queue at %s is reachable again"
_said: dict[str, float] = {}  # (broker address and kind of line) -> when it was last logged
_down: set[str] = set()  # brokers whose loss was logged and whose return was not yet


def reason(exc: BaseException) -> str:
    """The first line of an error (the first of a group), for a log line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:120]


class QuietAmqp(logging.Filter):
    """Turns aio-pika's and aiormq's outage records into one line per reconnect attempt."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if text.startswith("Connection attempt to") and len(record.args or ()) == 3:
            conn, exc, delay = record.args
            _down.add(_where(conn))
            _once(
                f"{_where(conn)} attempt",
                "The task queue at %s is not reachable (%s); trying again in %g s.",
                _where(conn),
                reason(exc),
                delay,
            )
            return False
        if text.startswith("Connection to %s closed. Reconnecting"):
            conn, delay = record.args
            if _where(conn) not in _down:  # logged again after every failed attempt: say it once
                _down.add(_where(conn))
                log.warning("The task queue at %s went away; reconnecting in %g s.", _where(conn), delay)
            return False
        # The lost connection's own reports: reader errors, transport errors, closed channels.
        if text.startswith(("Cancelling cause reader", "error when creating transport")):
            return False
        return not (text.startswith("Callback %r error") and _lost_connection(record.args))


def _lost_connection(args) -> bool:
    """A callback failed because its connection or channel is gone."""
    exc = args[-1] if isinstance(args, tuple) and args else None
    closed = isinstance(exc, RuntimeError) and "closed" in str(exc)
    return closed or isinstance(exc, ConnectionError) or type(exc).__module__.startswith("aiormq")


def quiet_amqp_logs() -> None:
    """Install QuietAmqp on the loggers that report a lost RabbitMQ connection (once)."""
    for name in ("aiormq.connection", "aio_pika.robust_connection", "aio_pika.tools"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietAmqp) for f in logger.filters):
            logger.addFilter(QuietAmqp())


def watch_amqp(broker, url: str) -> None:
    """Say once when RabbitMQ's connection of ``broker`` came back by itself."""
    for conn in (getattr(broker, "read_conn", None), getattr(broker, "write_conn", None)):
        if conn is not None and hasattr(conn, "reconnect_callbacks"):
            conn.reconnect_callbacks.add(lambda *_: _back(where(url)))


def _back(address: str) -> None:
    _down.discard(address)
    _once(f"{address} back", BACK, address)


def _once(key: str, message: str, *args) -> None:
    """Log ``message`` unless the same line about the same broker was just logged."""
    now = time.monotonic()
    if now - _said.get(key, -SAME_ATTEMPT) < SAME_ATTEMPT:
        return
    _said[key] = now
    (log.info if message == BACK else log.warning)(message, *args)


def _where(conn) -> str:
    return where(str(conn))  # aio-pika shows the URL with its password starred


class LenientReceiver(Receiver):
    """A Receiver whose late acknowledgement may fail: the connection it came on is gone."""

    async def callback(self, message, raise_err: bool = False) -> None:
        """Run the task; an acknowledgement that cannot be sent is one log line."""
        if isinstance(message, AckableMessage):
            message = AckableMessage(data=message.data, ack=_lenient(message.ack))
        await super().callback(message, raise_err)


def _lenient(ack):
    async def acknowledge() -> None:
        try:
            result = ack()
            if hasattr(result, "__await__"):
                await result
        except Exception as exc:  # the job ended; a redelivered copy finds it finished
            log.warning(
                "A job ended while the task queue was away and its acknowledgement was lost (%s); "
                "if the queue hands it out again, the worker sees it has ended.",
                reason(exc),
            )

    return acknowledge
