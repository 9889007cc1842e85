"""NPPES import and registry search benchmark (Postgres only).

1. Generates a full-width NPPES file (the real 330-column header, rows shaped like the real
   sample: valid NPIs, varied names, real taxonomy codes and ZIPs, ~8% deactivation stubs).
2. Bare COPY of that file into a plain 330-column table: the yardstick.
3. `import_nppes` on an empty registry (rows/s, peak RSS of the process), then a re-run that
   must change nothing.
4. Provider finder and NPI lookup latencies with the registry loaded.

Writes the results to docs/benchmarks.md (the NPPES section). Settings come from the
environment: DATABASE_URL (required, a Postgres server; the bench uses its own database
`referral_crm_bench` on it) and BENCH_NPPES_ROWS (default 1,000,000).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
DOCS = ROOT / "docs" / "benchmarks.md"
ROWS = int(os.environ.get("BENCH_NPPES_ROWS", "1000000"))
BENCH_DB = "referral_crm_bench"
# The real rows the generated ones are modelled on (public CMS data, outside the product).
SAMPLE = Path(
    os.environ.get(
        "BENCH_NPPES_SAMPLE",
        ROOT.parent / "shared" / "data" / "nppes" / "npidata_pfile_first1000_restored.csv",
    )
)
START, END = "<!-- nppes:start -->", "<!-- nppes:end -->"

# Real NUCC codes, weighted roughly like the monthly file (many nurses, counsellors, family
# physicians; few sub-specialists).
TAXONOMIES = [
    ("207Q00000X", 8), ("207R00000X", 8), ("163W00000X", 10), ("363LF0000X", 6),
    ("363A00000X", 5), ("101YM0800X", 5), ("174400000X", 4), ("1223G0001X", 5),
    ("207RC0000X", 2), ("207X00000X", 2), ("208000000X", 3), ("207V00000X", 2),
    ("2084P0800X", 2), ("225100000X", 4), ("152W00000X", 3), ("261QP2300X", 2),
    ("332B00000X", 2), ("251E00000X", 2), ("207P00000X", 2), ("390200000X", 3),
]  # fmt: skip
LAST_NAMES = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
    "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
    "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT",
    "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL",
    "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS", "PATEL", "SHAH", "KIM", "CHEN",
]  # fmt: skip
FIRST_NAMES = [
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS",
    "SARAH", "CHARLES", "KAREN", "PRIYA", "WEI", "AHMED", "MARIA", "JOSE", "ANH",
]  # fmt: skip


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- The file -------------------------------------------------------------------------------


def npi_for(n: int) -> str:
    from core.npi import npi_check_digit

    first_nine = f"1{n:08d}"
    return first_nine + str(npi_check_digit(first_nine))


def generate(path: Path, rows: int) -> None:
    import zipcodes

    if not SAMPLE.is_file():
        sys.exit(f"No NPPES sample at {SAMPLE}; set BENCH_NPPES_SAMPLE to an npidata_pfile.")
    with SAMPLE.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        templates = [row for row in reader if row[1]]
    col = {name: i for i, name in enumerate(header)}
    places = [
        (z["zip_code"], z["city"].upper(), z["state"])
        for z in zipcodes.list_all()
        if z["zip_code_type"] == "STANDARD" and z["lat"] != "0" and z["state"] != "PR"
    ]
    codes, weights = zip(*TAXONOMIES, strict=True)
    rng = random.Random(2026)
    taxonomy_cols = [col[f"Healthcare Provider Taxonomy Code_{n}"] for n in range(1, 16)]
    switch_cols = [col[f"Healthcare Provider Primary Taxonomy Switch_{n}"] for n in range(1, 16)]
    practice = {
        "zip": col["Provider Business Practice Location Address Postal Code"],
        "city": col["Provider Business Practice Location Address City Name"],
        "state": col["Provider Business Practice Location Address State Name"],
        "line1": col["Provider First Line Business Practice Location Address"],
    }
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(header)
        blank = [""] * len(header)
        for n in range(rows):
            npi = npi_for(n)
            if rng.random() < 0.08:
                stub = list(blank)
                stub[0] = npi
                stub[col["NPI Deactivation Date"]] = f"{rng.randint(1, 12):02d}/15/2019"
                writer.writerow(stub)
                continue
            row = list(rng.choice(templates))
            row[0] = npi
            if row[1] == "1":
                row[col["Provider Last Name (Legal Name)"]] = rng.choice(LAST_NAMES)
                row[col["Provider First Name"]] = rng.choice(FIRST_NAMES)
            zip_code, city, state = rng.choice(places)
            row[practice["zip"]] = zip_code + f"{rng.randint(0, 9999):04d}"
            row[practice["city"]], row[practice["state"]] = city, state
            row[practice["line1"]] = f"{rng.randint(1, 9999)} {rng.choice(LAST_NAMES)} ST"
            for i in taxonomy_cols + switch_cols:
                row[i] = ""
            for slot, code in enumerate(rng.choices(codes, weights, k=1 + (rng.random() < 0.2))):
                row[taxonomy_cols[slot]] = code
                row[switch_cols[slot]] = "Y" if slot == 0 else "N"
            writer.writerow(row)
    tmp.rename(path)


# --- Postgres -------------------------------------------------------------------------------


def database_urls() -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench.nppes_import needs DATABASE_URL pointing at a Postgres server.")
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    bench = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    return admin, bench


def recreate_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def bare_copy(bench_url: str, path: Path) -> tuple[int, float]:
    with psycopg.connect(bench_url, autocommit=True) as conn:
        header = next(csv.reader(path.open(newline="")))
        columns = ", ".join(f"c{i} text" for i in range(len(header)))
        conn.execute("DROP TABLE IF EXISTS bench_copy_stage")
        conn.execute(f"CREATE TABLE bench_copy_stage ({columns})")
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY bench_copy_stage FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        elapsed = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM bench_copy_stage").fetchone()[0]
        conn.execute("DROP TABLE bench_copy_stage")
    return count, elapsed


def _tree_rss_mb(pid: int) -> float:
    """Memory of a process and all its descendants, in MB: the sum of their proportional
    set sizes (PSS: each page shared by n processes counts 1/n in each), so pages a forked
    worker shares with its parent are counted once, not once per process as RSS would."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/smaps_rollup").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", status, re.M)
        total += int(match.group(1)) if match else 0
        pending.extend(int(child) for child in children)
    return total / 1024


PEAK_TREE_RSS_MB: dict[str, float] = {}


def manage(bench_url: str, *args: str) -> tuple[str, float]:
    """Run a manage.py command; its peak memory, summed over the command and the worker
    processes it starts, is sampled every 0.1 s into PEAK_TREE_RSS_MB[command]."""
    env = {**os.environ, "DATABASE_URL": bench_url}
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _tree_rss_mb(process.pid))
            time.sleep(0.1)
        stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    PEAK_TREE_RSS_MB[args[0]] = max(PEAK_TREE_RSS_MB.get(args[0], 0.0), peak)
    if process.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{stderr[-3000:]}")
    return stdout.strip(), elapsed


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_queries(bench_url: str) -> dict[str, Any]:
    """Finder page and NPI lookup latencies, in this process against the bench database."""
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_crm.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.twofactor import mark_verified
    from core.factories import UserFactory
    from core.roles import Role
    from registry.models import PracticeLocation, RegistryProvider

    rng = random.Random(7)
    manager = UserFactory(username="bench-manager", role=Role.MANAGER)
    client = Client()
    client.force_login(manager)
    # Both factors given, as a manager must (TWO_FACTOR_REQUIRED is on here).
    signed_in = client.session
    mark_verified(signed_in, manager)
    signed_in.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = signed_in.session_key
    centres = ["43215", "68102", "10001", "60601", "94103", "77002", "30303", "98101"]
    locations = []
    for zip_code in centres:
        location = PracticeLocation(name=f"Bench {zip_code}", zip_code=zip_code)
        location.full_clean()
        location.save()
        locations.append(location)
    specialties = [
        "207Q00000X",
        "classification:Allopathic & Osteopathic Physicians/Internal Medicine",
        "163W00000X",
        "grouping:Allopathic & Osteopathic Physicians",
    ]
    finder_ms: list[float] = []
    rows_seen = 0
    for i in range(200 + 20):
        query = {
            "specialty": rng.choice(specialties),
            "location": rng.choice(locations).pk,
            "miles": rng.choice([10, 25, 50]),
        }
        started = time.perf_counter()
        response = client.get("/registry/finder/", query)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        if i >= 20:  # the first requests warm caches and connections
            finder_ms.append(elapsed)
            rows_seen += response.content.count(b'text-body-secondary">NPI ')

    # The same searches at the SQL level: the count and the page the view runs.
    from registry.forms import FinderForm
    from registry.views import _finder_queryset

    sql_ms: list[float] = []
    for _ in range(200):
        form = FinderForm(
            {
                "specialty": rng.choice(specialties),
                "location": rng.choice(locations).pk,
                "miles": rng.choice([10, 25, 50]),
            }
        )
        assert form.is_valid(), form.errors
        queryset = _finder_queryset(form)
        started = time.perf_counter()
        queryset.count()
        list(queryset[:25])
        sql_ms.append((time.perf_counter() - started) * 1000)

    total = RegistryProvider.objects.count()
    npis = [npi_for(rng.randrange(ROWS)) for _ in range(3000)]
    lookup_ms: list[float] = []
    for i, npi in enumerate(npis):
        started = time.perf_counter()
        RegistryProvider.objects.by_npi(npi)  # the product's lookup (finder "add", forms)
        if i >= 200:
            lookup_ms.append((time.perf_counter() - started) * 1000)
    from django.db import connection

    raw_ms: list[float] = []
    with connection.cursor() as cursor:
        for i, npi in enumerate(npis):
            started = time.perf_counter()
            cursor.execute("SELECT * FROM registry_registryprovider WHERE npi = %s", [npi])
            cursor.fetchone()
            if i >= 200:
                raw_ms.append((time.perf_counter() - started) * 1000)
    return {
        "registry_rows": total,
        "finder_sql_p50": percentile(sql_ms, 0.5),
        "finder_sql_p95": percentile(sql_ms, 0.95),
        "raw_lookup_p50": percentile(raw_ms, 0.5),
        "raw_lookup_p95": percentile(raw_ms, 0.95),
        "finder_p50": percentile(finder_ms, 0.5),
        "finder_p95": percentile(finder_ms, 0.95),
        "finder_rows_per_page": rows_seen / len(finder_ms),
        "lookup_p50": percentile(lookup_ms, 0.5),
        "lookup_p95": percentile(lookup_ms, 0.95),
    }


# --- Report ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {
        "nproc": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
    }


def write_report(facts: dict[str, Any]) -> str:
    ok = {True: "yes", False: "**no**"}
    f = facts
    ratio = f["import_rps"] / f["copy_rps"]
    text = f"""{START}
## NPPES import and registry search

Measured by `make bench` (`python -m bench`, module `bench/nppes_import.py`) on
{f["date"]}. Machine: {f["nproc"]} CPUs, {f["ram"]} RAM, {f["pg_version"]},
Python {f["python"]}; Postgres and the benchmark on the same host.

Input: a generated NPPES file with the real 330-column header, {f["rows"]:,} rows
({f["file_mb"]:,.0f} MB) shaped like the real sample (valid NPIs, real NUCC codes and ZIPs,
~8% deactivation stubs).

| measure | result | target | met |
| --- | --- | --- | --- |
| bare `COPY` of the file into a plain 330-column text table | {f["copy_rps"]:,.0f} rows/s ({f["copy_s"]:.1f} s) | yardstick | |
| `import_nppes` (two loader processes), empty registry | {f["import_rps"]:,.0f} rows/s ({f["import_s"]:.1f} s) = {ratio:.0%} of COPY | ≥ 50% of COPY | {ok[ratio >= 0.5]} |
| peak memory of the import (PSS of the command and its loader processes, summed) | {f["import_rss_mb"]:.0f} MB | < 512 MB | {ok[f["import_rss_mb"] < 512]} |
| re-run of the same file | {f["rerun_s"]:.1f} s; `{f["rerun_summary"]}` | changes nothing | {ok[f["rerun_noop"]]} |
| finder page (specialty x distance from a location, 25 per page), p95 over 200 | {f["finder_p95"]:.1f} ms (p50 {f["finder_p50"]:.1f} ms, {f["finder_rows_per_page"]:.1f} rows/page) | < 50 ms | {ok[f["finder_p95"] < 50]} |
| finder queries only (count + page through the ORM), p95 over 200 | {f["finder_sql_p95"]:.1f} ms (p50 {f["finder_sql_p50"]:.1f} ms) | (part of the above) | |
| NPI lookup, SQL through the driver, p95 over 2,800 | {f["raw_lookup_p95"]:.3f} ms (p50 {f["raw_lookup_p50"]:.3f} ms) | < 1 ms | {ok[f["raw_lookup_p95"] < 1]} |
| NPI lookup (`RegistryProvider.objects.by_npi`, a model instance), p95 over 2,800 | {f["lookup_p95"]:.3f} ms (p50 {f["lookup_p50"]:.3f} ms) | < 1 ms | {ok[f["lookup_p95"] < 1]} |

First import summary: `{f["import_summary"]}`. Registry rows during the search
measurements: {f["registry_rows"]:,}. The finder is timed end to end through Django's test
client (session, permissions, form, count, page, partner summary, template).
{END}"""
    existing = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if START in existing and END in existing:
        before, rest = existing.split(START, 1)
        after = rest.split(END, 1)[1]
        updated = before + text + after
    else:
        updated = existing.rstrip() + "\n\n" + text + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(updated)
    return text


def main() -> None:
    # `python -m bench --small` passes every option to every benchmark: ignore the others'
    # options, but answer --help rather than start an hour's run.
    argparse.ArgumentParser(
        prog="python -m bench nppes_import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_known_args()
    sys.path.insert(0, str(ROOT))
    admin_url, bench_url = database_urls()
    VAR.mkdir(parents=True, exist_ok=True)
    path = VAR / f"npidata_pfile_bench_{ROWS}.csv"
    if not path.exists():
        log(f"Generating {ROWS:,} rows into {path} ...")
        started = time.perf_counter()
        generate(path, ROWS)
        log(f"  done in {time.perf_counter() - started:.0f} s")
    recreate_database(admin_url)
    log("Migrating the bench database ...")
    manage(bench_url, "migrate", "--no-input", "-v0")

    log("Bare COPY ...")
    copied, copy_s = bare_copy(bench_url, path)
    log("import_nppes ...")
    import_summary, import_s = manage(bench_url, "import_nppes", str(path), "--no-progress")
    # Summed over the command and its loader processes (sampled), not one process's peak.
    import_rss_mb = PEAK_TREE_RSS_MB["import_nppes"]
    log(f"  {import_summary}")
    log("import_nppes again ...")
    rerun_summary, rerun_s = manage(bench_url, "import_nppes", str(path), "--no-progress")
    log(f"  {rerun_summary}")
    log("Finder and NPI lookup ...")
    queries = measure_queries(bench_url)
    with psycopg.connect(bench_url) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]

    facts = {
        **machine(),
        **queries,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "pg_version": f"PostgreSQL {pg_version}",
        "rows": copied,
        "file_mb": path.stat().st_size / 1024 / 1024,
        "copy_s": copy_s,
        "copy_rps": copied / copy_s,
        "import_s": import_s,
        "import_rps": copied / import_s,
        "import_rss_mb": import_rss_mb,
        "import_summary": import_summary,
        "rerun_s": rerun_s,
        "rerun_summary": rerun_summary,
        "rerun_noop": rerun_summary.startswith("imported 0, updated 0,")
        and ", deactivated 0," in rerun_summary,
    }
    log(write_report(facts))


if __name__ == "__main__":
    main()
