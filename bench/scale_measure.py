"""Measuring pages through gunicorn and a real HTTP client: latency one request at a time,
throughput under concurrent clients, and the server CPU (gunicorn workers and Postgres
backends) each page view costs."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from tqdm import tqdm

from bench.scale_data import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str, cookie: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Cookie": cookie, "Host": "127.0.0.1"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, (time.perf_counter() - started) * 1000


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds consumed so far by each of these processes (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at both: one that
    ended in between (another client's connection) must not count as negative time."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _postgres_backends(database_url: str | None) -> list[int]:
    """The Postgres processes serving the benchmark database: its backends, found in
    pg_stat_activity, so that work on the server's other databases (a test run beside the
    benchmark) is not counted."""
    if not database_url:
        return []
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def measure_latency(
    port: int,
    path: str,
    cookie: str,
    requests: int,
    server: int,
    *,
    database_url: str | None = None,
    digits: int = 1,
    warmup: int = 30,
) -> dict[str, float]:
    """One request at a time: what a user waits for on an otherwise idle server; and the
    CPU time each page view costs the app (gunicorn workers) and the database (Postgres
    processes), which unlike wall-clock time does not depend on what else the machine runs.
    """
    # Enough warm-up that every gunicorn worker has compiled this page's templates and
    # opened its database connection (a cold worker's first view costs several times more).
    for _ in range(warmup):
        _get(port, path, cookie)
    timings = []
    # Read after the warm-up requests, when gunicorn has started all its workers.
    server_pids = [server, *_children(server)]
    database_pids = _postgres_backends(database_url)
    app_before, database_before = _cpu_by_pid(server_pids), _cpu_by_pid(database_pids)
    for _ in range(requests):
        status, ms = _get(port, path, cookie)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
        timings.append(ms)
    app_cpu = _cpu_spent(app_before, _cpu_by_pid(server_pids))
    database_cpu = _cpu_spent(database_before, _cpu_by_pid(database_pids))
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
        "app_cpu_ms": round(app_cpu / requests * 1000, digits),
        "db_cpu_ms": round(database_cpu / requests * 1000, digits),
    }


def measure_throughput(
    port: int, paths: list[str], cookie: str, seconds: float, concurrency: int
) -> dict[str, float]:
    """Authenticated page views per second with `concurrency` clients looping over the
    pages, and the latency they saw under that load."""
    stop = time.perf_counter() + seconds
    timings: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            status, ms = _get(port, paths[i % len(paths)], cookie)
            i += 1
            with lock:
                (timings if status == 200 else errors).append(ms if status == 200 else status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    timings.sort()
    return {
        "requests_per_second": round(len(timings) / elapsed, 1),
        "p95_ms_under_load": round(timings[int(len(timings) * 0.95) - 1], 1),
        "errors": len(errors),
    }


THROUGHPUT_RUNS = 3


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int, app: str = "referral_crm.wsgi") -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                app,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def django_child(env: dict[str, str], command: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale_django", command],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_yardstick(env: dict[str, str], *, workers: int, seconds: float) -> dict[str, float]:
    """A bare hello-world Django view (bench/hello.py) under the same gunicorn and client:
    its views/s, and the gunicorn CPU each view costs: how fast this machine is right now."""
    server = Gunicorn(env, workers, app="bench.hello")
    try:
        cpu = measure_latency(server.port, "/", "", 2000, server.process.pid, digits=2)[
            "app_cpu_ms"
        ]
        load = measure_throughput(server.port, ["/"], "", seconds, concurrency=workers * 2)
        return {"requests_per_second": load["requests_per_second"], "cpu_ms": cpu}
    finally:
        server.stop()


def measure(env: dict[str, str], *, workers: int, requests: int, seconds: float) -> dict[str, Any]:
    yardstick = measure_yardstick(env, workers=workers, seconds=seconds)
    pages = django_child(env, "pages")
    cookie = f"sessionid={pages['session']}"
    server = Gunicorn(env, workers)
    try:
        # Every worker warm on every page first (templates compiled, connection open,
        # caches filled): otherwise the first page measured pays for the cold workers.
        measure_throughput(
            server.port, list(pages["urls"].values()), cookie, 3.0, concurrency=workers * 2
        )
        latency = {
            name: measure_latency(
                server.port,
                url,
                cookie,
                requests,
                server.process.pid,
                database_url=env["DATABASE_URL"],
            )
            for name, url in tqdm(pages["urls"].items(), desc="latency", unit=" page")
        }
        # A report costs far more than a page and each worker has its templates compiled
        # by now: fewer requests, a short warm-up.
        reports = {
            name: measure_latency(
                server.port,
                url,
                cookie,
                max(20, requests // 5),
                server.process.pid,
                database_url=env["DATABASE_URL"],
                warmup=4,
            )
            for name, url in tqdm(pages["reports"].items(), desc="reports", unit=" report")
        }
        # Three runs, reported by the median: on a shared VM one run can be a third off.
        runs = [
            measure_throughput(
                server.port, list(pages["urls"].values()), cookie, seconds, concurrency=workers * 2
            )
            for _ in range(THROUGHPUT_RUNS)
        ]
        load = sorted(runs, key=lambda run: run["requests_per_second"])[len(runs) // 2]
        load = {
            **load,
            "runs": [run["requests_per_second"] for run in runs],
            "errors": sum(run["errors"] for run in runs),
        }
    finally:
        server.stop()
    return {
        "latency": latency,
        "reports": reports,
        "queries": pages["queries"],
        "load": load,
        "hello": yardstick,
    }
