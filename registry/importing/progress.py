"""A one-line progress bar for long commands, written to a terminal stream."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    """Redraws at most a few times a second, so it costs nothing next to the work."""

    def __init__(self, stream: TextIO, *, label: str, width: int = 30) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.started = time.monotonic()
        self._drawn_at = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn_at < 0.2 and done < total:
            return
        self._drawn_at = now
        share = min(1.0, done / total) if total else 1.0
        filled = int(share * self.width)
        elapsed = now - self.started
        eta = f"{elapsed / share - elapsed:5.0f}s left" if 0 < share < 1 else " " * 10
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {share:6.1%} {eta}")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
