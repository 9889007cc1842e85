"""For tests that replay two people at the same moment: one of them in a thread of its
own, on a database connection of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def in_a_thread(work: Callable[[], Any], outcome: dict[str, Any]) -> threading.Thread:
    """Start `work` in a thread; its result goes in outcome["result"], or what it raised
    in outcome["error"]. The thread's connection is closed when it ends, so the test
    database can be dropped."""

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as error:  # the failure is what is asserted on
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread
