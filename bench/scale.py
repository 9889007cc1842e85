"""Scale harness: load a realistic network (20k partners, 1M referrals over four years with
their history, 200k activities) with COPY, then measure the busiest pages through gunicorn
and a real HTTP client, at 10k referrals and again at 1M.

    DATABASE_URL=postgres://... python -m bench scale [--small] [--database NAME]

The data goes into a database of its own (dropped and re-created), on the server that
DATABASE_URL names. Results are printed and written into docs/benchmarks.md ("Scale").
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
NULL = r"\N"


@dataclass(frozen=True)
class Scale:
    organizations: int
    partners: int
    # Referrals and activities at the first measurement, then at the second.
    referrals: tuple[int, int]
    activities: tuple[int, int]


FULL = Scale(
    organizations=5_000,
    partners=20_000,
    referrals=(10_000, 1_000_000),
    activities=(2_000, 200_000),
)
SMALL = Scale(organizations=500, partners=2_000, referrals=(2_000, 20_000), activities=(400, 4_000))

YEARS = 4
CANCEL_REASONS = [
    "We could not reach the patient after three calls and a letter.",
    "The patient chose to be seen closer to home.",
    "The patient's insurance does not cover the visit here.",
]
FIRST_NAMES = [
    "Ruth",
    "James",
    "Maria",
    "Robert",
    "Linda",
    "Michael",
    "Patricia",
    "David",
    "Jennifer",
    "William",
    "Elizabeth",
    "Joseph",
    "Susan",
    "Thomas",
    "Jessica",
    "Charles",
    "Sarah",
    "Daniel",
    "Karen",
    "Matthew",
    "Nancy",
    "Anthony",
    "Lisa",
    "Mark",
    "Betty",
    "Donald",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Dorothy",
    "Andrew",
    "Kimberly",
    "Joshua",
    "Emily",
    "Kenneth",
    "Donna",
]
LAST_NAMES = [
    "Olsen",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
]
SPECIALTIES = [
    ("207Q00000X", "Family Medicine"),
    ("207R00000X", "Internal Medicine"),
    ("208000000X", "Pediatrics"),
    ("207V00000X", "Obstetrics & Gynecology"),
    ("207RC0000X", "Cardiovascular Disease"),
    ("207X00000X", "Orthopaedic Surgery"),
    ("2084N0400X", "Neurology"),
    ("207N00000X", "Dermatology"),
    ("363L00000X", "Nurse Practitioner"),
    ("363A00000X", "Physician Assistant"),
]
CREDENTIALS = ["MD", "MD", "MD", "DO", "NP", "PA-C"]
REASONS = [
    "Chronic knee pain, failed conservative therapy; evaluate for injection.",
    "New-onset atrial fibrillation; please evaluate and advise on anticoagulation.",
    "Uncontrolled type 2 diabetes despite two agents.",
    "Suspicious pigmented lesion on the back; evaluate for biopsy.",
    "Recurrent migraines, worsening over three months.",
    "Shoulder pain after fall; MRI shows partial rotator cuff tear.",
    "Low back pain with radiculopathy, six weeks.",
]
ACTIVITY_KINDS = ["visit", "visit", "drop_in", "call", "call", "lunch", "email", "meeting"]
NEXT_STEPS = ["Bring the new referral pad", "Lunch with the front desk", "Send outcome stats", ""]
CITIES = [("Omaha", "NE", "681"), ("Lincoln", "NE", "685"), ("Council Bluffs", "IA", "515")]

# Paths through the pipeline by final status: every step becomes one history row, and the
# shares roughly follow a specialty practice (most referrals seen and closed).
FINISHED_PATHS = [
    (70, ["received", "accepted", "scheduled", "seen", "report_sent", "closed"]),
    (10, ["received", "declined", "closed"]),
    (8, ["received", "accepted", "cancelled", "closed"]),
    (7, ["received", "accepted", "scheduled", "no_show", "closed"]),
    (5, ["received", "on_hold", "accepted", "scheduled", "seen", "report_sent", "closed"]),
]
OPEN_PATHS = [
    (30, ["received"]),
    (20, ["received", "accepted"]),
    (25, ["received", "accepted", "scheduled"]),
    (10, ["received", "accepted", "scheduled", "seen"]),
    (5, ["received", "accepted", "scheduled", "seen", "report_sent"]),
    (5, ["received", "on_hold"]),
    (5, ["received", "accepted", "scheduled", "no_show"]),
]
# Referrals younger than this are still being worked; older ones have finished.
OPEN_WINDOW = timedelta(days=60)


def npi_with_check_digit(base9: int) -> str:
    """A valid individual NPI: nine digits and the Luhn digit over 80840 + those digits."""
    digits = f"80840{base9:09d}"
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return f"{base9:09d}{(10 - total % 10) % 10}"


def ts(moment: datetime) -> str:
    return moment.isoformat()


class Loader:
    """Generates rows and streams them to Postgres with COPY, in chunks."""

    def __init__(self, conn: psycopg.Connection, users: dict[str, Any], seed: int = 5) -> None:
        self.conn = conn
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: left on, each COPY's
        # commit would run one trigger per row and key (minutes for the history table).
        # The rows are consistent by construction, so the checks are skipped for the load.
        conn.execute("SET session_replication_role = replica")
        conn.commit()
        self.users = users
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - timedelta(days=365 * YEARS)
        self.provider_ids: list[int] = []
        self.provider_org: dict[int, int] = {}
        self.cum_weights: list[float] = []

    def copy(self, table: str, columns: list[str], rows: Iterator[list[str]], total: int) -> None:
        self._default_unlisted_columns(table, columns)
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            buffer: list[str] = []
            with tqdm(total=total, desc=table, unit=" rows", unit_scale=True) as bar:
                for row in rows:
                    buffer.append("\t".join(row))
                    if len(buffer) == 20_000:
                        copy.write("\n".join(buffer) + "\n")
                        bar.update(len(buffer))
                        buffer.clear()
                if buffer:
                    copy.write("\n".join(buffer) + "\n")
                    bar.update(len(buffer))
        self.conn.commit()

    def _default_unlisted_columns(self, table: str, columns: list[str]) -> None:
        """Columns other features add later (NOT NULL, defaulted in Django only) get a
        database default for the load, so the harness keeps working as the schema grows."""
        zero_by_type = {
            "character varying": "''",
            "text": "''",
            "boolean": "false",
            "integer": "0",
            "bigint": "0",
            "smallint": "0",
            "numeric": "0",
            "timestamp with time zone": "now()",
            "date": "current_date",
            "jsonb": "'{}'",
        }
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL",
                [table],
            )
            for name, data_type in cur.fetchall():
                if name not in columns and data_type in zero_by_type:
                    cur.execute(
                        f'ALTER TABLE {table} ALTER COLUMN "{name}" '
                        f"SET DEFAULT {zero_by_type[data_type]}"
                    )

    def next_id(self, table: str) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
            row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def reset_sequences(self, tables: list[str]) -> None:
        with self.conn.cursor() as cur:
            for table in tables:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce(max(id), 1)) FROM {table}"
                )
        self.conn.commit()

    # --- partners ------------------------------------------------------------------------

    def load_partners(self, scale: Scale) -> None:
        rng = self.rng
        created = ts(self.start)

        def organizations() -> Iterator[list[str]]:
            for i in range(scale.organizations):
                city, state, zip3 = rng.choice(CITIES)
                yield [
                    str(i + 1),
                    f"{rng.choice(LAST_NAMES)} {rng.choice(['Family Clinic', 'Medical Group', 'Health', 'Primary Care'])} {i}",
                    f"{rng.randint(100, 9999)} {rng.choice(LAST_NAMES)} St",
                    "",
                    city,
                    state,
                    f"{zip3}{rng.randint(0, 99):02d}",
                    "",
                    f"(402) 555-{rng.randint(0, 9999):04d}",
                    f"(402) 555-{rng.randint(0, 9999):04d}",
                    "",
                    "",
                    created,
                    created,
                ]

        self.copy(
            "partners_organization",
            [
                "id",
                "name",
                "address_line1",
                "address_line2",
                "city",
                "state",
                "zip_code",
                "npi",
                "phone",
                "fax",
                "email",
                "notes",
                "created_at",
                "updated_at",
            ],
            organizations(),
            scale.organizations,
        )
        liaisons = self.users["liaisons"]
        tiers = ["A"] * 5 + ["B"] * 15 + ["C"] * 30 + [""] * 50
        statuses = ["active"] * 60 + ["prospect"] * 30 + ["dormant"] * 10

        def providers() -> Iterator[list[str]]:
            for i in range(scale.partners):
                pk = i + 1
                org = rng.randint(1, scale.organizations)
                self.provider_org[pk] = org
                code, specialty = rng.choice(SPECIALTIES)
                yield [
                    str(pk),
                    npi_with_check_digit(100_000_000 + pk * 7),
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    rng.choice(CREDENTIALS),
                    code,
                    specialty,
                    "",
                    "",
                    rng.choice(statuses),
                    rng.choice(tiers),
                    "",
                    created,
                    created,
                    str(org),
                    str(rng.choice(liaisons)),
                ]

        self.copy(
            "partners_provider",
            [
                "id",
                "npi",
                "first_name",
                "last_name",
                "credential",
                "taxonomy_code",
                "specialty",
                "phone",
                "email",
                "status",
                "tier",
                "notes",
                "created_at",
                "updated_at",
                "organization_id",
                "owner_id",
            ],
            providers(),
            scale.partners,
        )
        self.provider_ids = list(range(1, scale.partners + 1))
        # Referral volume follows a Pareto curve (80/20 with alpha ≈ 1.16), capped so the
        # busiest partner sends a few percent of everything, as in real practices.
        weights = [min(rng.paretovariate(1.16), 400.0) for _ in self.provider_ids]
        running = 0.0
        self.cum_weights = []
        for weight in weights:
            running += weight
            self.cum_weights.append(running)
        self.reset_sequences(["partners_organization", "partners_provider"])

    # --- referrals and their history --------------------------------------------------------

    def load_referrals(self, count: int) -> None:
        rng = self.rng
        first_id = self.next_id("referrals_referral")
        first_event = self.next_id("referrals_referralevent")
        coordinators = self.users["coordinators"]
        span = (self.now - self.start).total_seconds()
        events: list[list[str]] = []
        finished_weights = [w for w, _ in FINISHED_PATHS]
        open_weights = [w for w, _ in OPEN_PATHS]
        providers = rng.choices(self.provider_ids, cum_weights=self.cum_weights, k=count)

        def referrals() -> Iterator[list[str]]:
            event_id = first_event
            for n in range(count):
                pk = first_id + n
                # Volume grows over the years: the square root skews arrivals to recent ones.
                received = self.start + timedelta(seconds=span * rng.random() ** 0.8)
                is_open = self.now - received < OPEN_WINDOW
                path = rng.choices(
                    [p for _, p in (OPEN_PATHS if is_open else FINISHED_PATHS)],
                    weights=open_weights if is_open else finished_weights,
                )[0]
                urgency = rng.choices(["routine", "urgent", "stat"], weights=[80, 15, 5])[0]
                moment = received
                contacted = appointment = seen = closed = None
                actor = rng.choice(coordinators)
                previous = ""
                for step in path:
                    if previous:
                        gap = timedelta(hours=rng.uniform(1, 72 if step != "seen" else 600))
                        moment = min(moment + gap, self.now)
                    if previous == "received" and contacted is None:
                        contacted = moment
                    if step == "scheduled":
                        appointment = moment + timedelta(days=rng.uniform(2, 40))
                    elif step == "seen":
                        seen = moment
                    elif step == "closed":
                        closed = moment
                    events.append(
                        [
                            str(event_id),
                            previous,
                            step,
                            ts(moment),
                            "",
                            str(actor),
                            str(pk),
                        ]
                    )
                    event_id += 1
                    previous = step
                status = path[-1]
                dob = date(1930, 1, 1) + timedelta(days=rng.randint(0, 33_000))
                yield [
                    str(pk),
                    "outbound" if rng.random() < 0.15 else "inbound",
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    dob.isoformat(),
                    f"(402) 555-{rng.randint(0, 9999):04d}",
                    rng.choice(REASONS),
                    urgency,
                    rng.choice(["fax", "fax", "phone", "web_form", "e_referral"]),
                    status,
                    ts(received),
                    "Outside our scope of practice" if "declined" in path else "",
                    # By id, not by the generator: the rest of the data stays as it was.
                    CANCEL_REASONS[pk % len(CANCEL_REASONS)] if "cancelled" in path else "",
                    ts(appointment) if appointment else NULL,
                    ts(seen) if seen else NULL,
                    ts(closed) if closed else NULL,
                    ts(contacted) if contacted else NULL,
                    ts(received),
                    ts(moment),
                    str(actor) if not is_open or rng.random() < 0.8 else NULL,
                    NULL,
                    str(providers[n]),
                ]

        self.copy(
            "referrals_referral",
            [
                "id",
                "direction",
                "patient_first_name",
                "patient_last_name",
                "patient_dob",
                "patient_phone",
                "reason",
                "urgency",
                "channel",
                "status",
                "received_at",
                "decline_reason",
                "cancel_reason",
                "appointment_at",
                "seen_at",
                "closed_at",
                "contacted_at",
                "created_at",
                "updated_at",
                "assigned_to_id",
                "created_by_id",
                "provider_id",
            ],
            referrals(),
            count,
        )
        self.copy(
            "referrals_referralevent",
            ["id", "from_status", "to_status", "at", "note", "actor_id", "referral_id"],
            iter(events),
            len(events),
        )
        self.reset_sequences(["referrals_referral", "referrals_referralevent"])

    def load_activities(self, count: int) -> None:
        rng = self.rng
        first_id = self.next_id("outreach_activity")
        first_link = self.next_id("outreach_activity_providers")
        span = (self.now - self.start).total_seconds()
        links: list[list[str]] = []
        liaisons = self.users["liaisons"]

        def activities() -> Iterator[list[str]]:
            link_id = first_link
            for n in range(count):
                pk = first_id + n
                provider = rng.choice(self.provider_ids)
                at = self.start + timedelta(seconds=span * rng.random())
                links.append([str(link_id), str(pk), str(provider)])
                link_id += 1
                step = rng.choice(NEXT_STEPS)
                yield [
                    str(pk),
                    rng.choice(ACTIVITY_KINDS),
                    ts(at),
                    "Met the office manager; referral pad restocked.",
                    step,
                    (at.date() + timedelta(days=14)).isoformat() if step else NULL,
                    ts(at),
                    str(rng.choice(liaisons)),
                    str(self.provider_org[provider]),
                ]

        self.copy(
            "outreach_activity",
            [
                "id",
                "kind",
                "occurred_at",
                "notes",
                "next_step",
                "next_step_due",
                "created_at",
                "logged_by_id",
                "organization_id",
            ],
            activities(),
            count,
        )
        self.copy(
            "outreach_activity_providers",
            ["id", "activity_id", "provider_id"],
            iter(links),
            len(links),
        )
        self.reset_sequences(["outreach_activity", "outreach_activity_providers"])

    def analyze(self) -> None:
        # VACUUM as well: freshly copied pages are not yet marked all-visible, which would
        # keep index-only scans from being index-only (autovacuum does it in production).
        self.conn.commit()
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        self.conn.autocommit = False


# --- measuring -------------------------------------------------------------------------------


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
) -> dict[str, float]:
    """One request at a time: what a user waits for on an otherwise idle server; and the
    CPU time each page view costs the app (gunicorn workers) and the database (Postgres
    processes), which unlike wall-clock time does not depend on what else the machine runs.
    """
    # Enough warm-up that every gunicorn worker has compiled this page's templates and
    # opened its database connection (a cold worker's first view costs several times more).
    for _ in range(30):
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
    return {"latency": latency, "queries": pages["queries"], "load": load, "hello": yardstick}


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
