"""An SMTP server on loopback that records what it receives, for tests and benchmarks.

It counts every message it accepts by Message-ID, so a test can prove that each letter
arrived and how many times. `refuse` and `silent` make it misbehave the way real servers
do: refuse every message, or accept the connection and never answer.
Run as `python -m bench.smtp_sink PORT` for a sink in a process of its own.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO: thousands of lines that would slow the sink.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.refuse:
            return "554 5.7.1 Refused by the test sink"
        message = message_from_bytes(envelope.content)
        with self.sink.lock:
            self.sink.received[message.get("Message-ID", "")] += 1
            self.sink.messages.append(message)
        return "250 2.0.0 Accepted"


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.refuse = False
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.messages: list[Any] = []
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.received.values())

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word: an SMTP server that hangs."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port = int(self._socket.getsockname()[1])
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)

    def stop(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()


if __name__ == "__main__":
    sink = SmtpSink(int(sys.argv[1])).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()
