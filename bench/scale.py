"""Scale harness: load a realistic network (20k partners, 1M referrals over four years with
their history, 200k activities) with COPY, then measure the busiest pages through gunicorn
and a real HTTP client, at 10k referrals and again at 1M.

    DATABASE_URL=postgres://... python -m bench scale [--small] [--database NAME]

The data goes into a database of its own (dropped and re-created), on the server that
DATABASE_URL names. Results are printed and written into docs/benchmarks.md ("Scale").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.scale_data import FULL, ROOT, SMALL
from bench.scale_load import Loader
from bench.scale_measure import django_child, measure

# --- the run ---------------------------------------------------------------------------------


def machine_facts(conn: psycopg.Connection) -> dict[str, str]:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    server = conn.execute("SHOW server_version").fetchone()
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{memory_kb / 1024 / 1024:.0f} GB",
        "postgres": server[0] if server else "?",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def recreate_database(base_url: str, name: str) -> str:
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def timed(label: str, work: Callable[[], None], log: dict[str, float]) -> None:
    started = time.perf_counter()
    work()
    log[label] = round(time.perf_counter() - started, 1)


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = ("partners_provider", "referrals_referral", "referrals_referralevent")
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables
    }  # type: ignore[index]
    counts["outreach_activity"] = conn.execute("SELECT count(*) FROM outreach_activity").fetchone()[
        0
    ]  # type: ignore[index]
    return counts


def measure_existing(base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure again on the database a previous run loaded (after a fix, say), migrating it
    first so new indexes are built."""
    url = urlunsplit(urlsplit(base_url)._replace(path=f"/{args.database}"))
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "false"}
    env.pop("DJANGO_ENV", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    with psycopg.connect(url) as conn:
        step = {"rows": row_counts(conn)}
        machine = machine_facts(conn)
    step.update(measure(env, workers=args.workers, requests=args.requests, seconds=args.seconds))
    return {"scale": "remeasure", "machine": machine, "steps": [step], "load_seconds": {}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("The scale harness needs DATABASE_URL pointing at a Postgres server.")
    scale = SMALL if args.small else FULL
    if args.measure_only:
        return measure_existing(base_url, args)
    url = recreate_database(base_url, args.database)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "false"}
    env.pop("DJANGO_ENV", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    users = django_child(env, "users")
    load_times: dict[str, float] = {}
    results: dict[str, Any] = {"scale": "small" if args.small else "full", "steps": []}
    with psycopg.connect(url) as conn:
        results["machine"] = machine_facts(conn)
        loader = Loader(conn, users)
        timed("partners", lambda: loader.load_partners(scale), load_times)
        done_referrals = done_activities = 0
        for referrals, activities in zip(scale.referrals, scale.activities, strict=True):
            timed(
                f"referrals to {referrals:,}",
                lambda n=referrals - done_referrals: loader.load_referrals(n),
                load_times,
            )
            timed(
                f"activities to {activities:,}",
                lambda n=activities - done_activities: loader.load_activities(n),
                load_times,
            )
            timed(f"analyze at {referrals:,}", loader.analyze, load_times)
            done_referrals, done_activities = referrals, activities
            counts = row_counts(conn)
            step = measure(env, workers=args.workers, requests=args.requests, seconds=args.seconds)
            results["steps"].append({"rows": counts, **step})
    results["load_seconds"] = load_times
    return results


def report(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "## Scale",
        "",
        f"Run `{results['command']}` on {machine['date']}: {machine['cores']} cores "
        f"({machine['cpu']}), {machine['memory']} RAM, PostgreSQL {machine['postgres']}, "
        f"Python {machine['python']}; gunicorn with {results['workers']} sync workers on "
        "loopback, Python http.client as the client on the same machine.",
        "",
        *(
            [
                "Loading (COPY through psycopg 3, seconds): "
                + ", ".join(f"{label} {secs}" for label, secs in results["load_seconds"].items())
                + ".",
                "",
            ]
            if results["load_seconds"]
            else []
        ),
        "Latency is one request at a time (what a user waits for); throughput is "
        f"{results['workers'] * 2} concurrent clients looping over all the pages.",
        "",
    ]
    for step in results["steps"]:
        rows = step["rows"]
        lines += [
            f"### {rows['referrals_referral']:,} referrals, "
            f"{rows['referrals_referralevent']:,} events, "
            f"{rows['partners_provider']:,} partners, {rows['outreach_activity']:,} activities",
            "",
            "| page | p50 ms | p95 ms | queries | app CPU ms/view | Postgres CPU ms/view |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, latency in step["latency"].items():
            lines.append(
                f"| {name} | {latency['p50_ms']} | {latency['p95_ms']} | {step['queries'][name]} "
                f"| {latency.get('app_cpu_ms', 'n/a')} | {latency.get('db_cpu_ms', 'n/a')} |"
            )
        if step.get("reports"):
            lines += [
                "",
                "The manager's reports, as they open (the last twelve months), one at a time; "
                "not in the throughput mix below:",
                "",
                "| report | p50 ms | p95 ms | queries | app CPU ms/view | Postgres CPU ms/view |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for name, latency in step["reports"].items():
                lines.append(
                    f"| {name} | {latency['p50_ms']} | {latency['p95_ms']} "
                    f"| {step['queries'][name]} | {latency['app_cpu_ms']} "
                    f"| {latency['db_cpu_ms']} |"
                )
        load = step["load"]
        lines += [
            "",
            f"Throughput: **{load['requests_per_second']} authenticated page views/s** "
            f"(median of {len(load['runs'])} runs: "
            + ", ".join(str(rps) for rps in load["runs"])
            + f"; p95 under that load {load['p95_ms_under_load']} ms, {load['errors']} errors).",
            "",
        ]
        costs = [
            latency["app_cpu_ms"] + latency["db_cpu_ms"]
            for latency in step["latency"].values()
            if "app_cpu_ms" in latency
        ]
        if costs:
            mean = statistics.mean(costs)
            cores = int(machine["cores"])
            lines += [
                f"Server CPU per page view (app + Postgres, mean over the pages): {mean:.1f} ms, "
                f"so {cores} cores can serve at most about {cores * 1000 / mean:.0f} views/s "
                "before the client's own CPU is counted.",
                "",
            ]
            hello = step["hello"]
            lines += [
                "Yardstick at the same time: a bare hello-world Django view (bench/hello.py, "
                f"no middleware) under the same gunicorn cost {hello['cpu_ms']} ms of CPU "
                f"per view and ran {hello['requests_per_second']:,.0f} views/s with this "
                f"client (which is then the limit); these pages cost "
                f"{mean / max(hello['cpu_ms'], 0.01):.0f} times its CPU per view (the "
                "target, 300 views/s against about 7,000, allows about 23 times).",
                "",
            ]
    return "\n".join(lines)


def write_report(text: str) -> Path:
    """Replace the "Scale" section of docs/benchmarks.md, leaving other sections alone."""
    path = ROOT / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = current.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Scale"), None)
    if start is None:
        updated = current.rstrip() + "\n\n" + text + "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        updated = "\n".join([*lines[:start], *text.splitlines(), "", *lines[end:]]).rstrip()
        updated += "\n"
    path.write_text(updated)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__)
    parser.add_argument("--small", action="store_true", help="2k → 20k referrals, a quick check")
    parser.add_argument("--database", default="referral_crm_scale", help="dropped and re-made")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    parser.add_argument("--seconds", type=float, default=15, help="length of the load test")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument(
        "--measure-only", action="store_true", help="measure the database already loaded"
    )
    args = parser.parse_args(argv)
    results = run(args)
    results["workers"] = args.workers
    given = sys.argv[1:] if argv is None else argv
    results["command"] = "make bench" if not given else "python -m bench scale " + " ".join(given)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{results['scale']}.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    sys.stdout.write(text + "\n")
    if not args.no_write:
        sys.stdout.write(f"Written to {write_report(text)}\n")


if __name__ == "__main__":
    main()
