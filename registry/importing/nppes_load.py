"""Loading an NPPES download into the registry tables.

Postgres: each batch is COPied into a temporary staging table and merged with one
`INSERT ... ON CONFLICT (npi) DO UPDATE ... WHERE (row differs)`, so a re-run of the same
month writes nothing and a newer month rewrites only the rows CMS changed. Other databases
(SQLite in development) take a slower batched path with the same results.
"""

from __future__ import annotations

import csv
import io
import itertools
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Model
from django.utils import timezone

from registry.geo import zip_centroid
from registry.importing.nppes_file import (
    ENDPOINT_COLUMNS,
    ENDPOINT_LENGTHS,
    LOCATION_COLUMNS,
    LOCATION_LENGTHS,
    PROVIDER_COLUMNS,
    NppesFileError,
    ProviderReader,
    Rejection,
    open_source,
    read_companion,
    text_stream,
)

Progress = Callable[[int, int], None]
TABLE = "registry_registryprovider"
STAGE = "registry_nppes_stage"
# Rows per COPY + merge: big enough to amortise the merge, small enough to keep memory flat.
POSTGRES_BATCH = 25_000
PORTABLE_BATCH = 2_000

__all__ = ["NppesFileError", "NppesImportResult", "nppes_import"]


@dataclass
class NppesImportResult:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    filtered: int = 0
    endpoints: int = 0
    locations: int = 0
    # Stored rows of NPIs in the file that the file no longer lists.
    endpoints_removed: int = 0
    locations_removed: int = 0
    repaired_floats: bool = False
    rejects_path: Path | None = None

    @property
    def summary(self) -> str:
        return (
            f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, "
            f"deactivated {self.deactivated}, rejected {self.rejected}"
        )

    def add(self, counts: tuple[int, int, int, int]) -> None:
        self.imported += counts[0]
        self.updated += counts[1]
        self.unchanged += counts[2]
        self.deactivated += counts[3]


@dataclass
class _Rejects:
    """Writes rejected rows to a CSV as they come, so memory stays flat on a bad file."""

    path: Path
    count: int = 0
    _handle: IO[str] | None = None
    _writer: Any = None
    prefix: str = ""

    def __call__(self, rejection: Rejection) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["file", "line", "npi", "reason"])
        self._writer.writerow([self.prefix, rejection.line, rejection.npi, rejection.reason])
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def append_part(self, part: Path) -> None:
        """Add the rows a parallel worker wrote to its own file (same columns), in order."""
        if not part.exists():
            return
        with part.open(newline="", encoding="utf-8") as handle:
            rows = csv.reader(handle)
            next(rows, None)
            for file, line, npi, reason in rows:
                self.prefix = file
                self(Rejection(int(line), npi, reason))
        part.unlink()


def default_rejects_path(source: Path) -> Path:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    return Path(settings.VAR_DIR) / "registry" / "rejects" / f"{source.stem}-{stamp}-rejects.csv"


def nppes_import(
    *,
    path: Path,
    states: frozenset[str] = frozenset(),
    taxonomy_prefixes: tuple[str, ...] = (),
    progress: Progress | None = None,
    rejects_path: Path | None = None,
    jobs: int = 1,
) -> NppesImportResult:
    """Load an npidata_pfile CSV, or the monthly zip with its endpoint and secondary
    location files. Raises NppesFileError at once for a file that is not NPPES data.

    `jobs` > 1 splits a plain CSV file into that many byte ranges, each parsed and loaded by
    its own process (parsing 330 columns in Python is the slow part; a zip member cannot be
    split, so a bundle is read by one process). Inside a transaction everything stays on the
    caller's connection."""
    rejects = _Rejects(rejects_path or default_rejects_path(path))
    reader = ProviderReader(states=states, taxonomy_prefixes=taxonomy_prefixes, on_reject=rejects)
    result = NppesImportResult()
    outside_transaction = not connection.in_atomic_block
    bulk = connection.vendor == "postgresql" and outside_transaction
    if bulk:
        _restore_indexes()  # from an earlier load that was killed before it rebuilt them
    with ExitStack() as stack:
        stack.callback(rejects.close)
        source = open_source(path, stack)
        rejects.prefix = "npidata"

        def report() -> None:
            if progress is not None:
                progress(source.position(), source.total_bytes)

        if jobs > 1 and source.splittable and outside_transaction:
            # Refuse a file that is not NPPES before any process starts or anything is written.
            header_line = source.providers.readline()
            ProviderReader().check_header(header_line)
            if bulk:
                _drop_indexes_if_empty()
                stack.callback(_restore_indexes)
            _load_parallel(
                path=path,
                jobs=jobs,
                reader=reader,
                rejects=rejects,
                result=result,
                progress=progress,
            )
        else:
            rows = reader.rows(source.providers)
            # Read the header now, so a file that is not NPPES fails before any write.
            first = next(rows, None)
            records = itertools.chain([first], rows) if first is not None else iter(())
            if bulk:
                _drop_indexes_if_empty()
                stack.callback(_restore_indexes)
            if connection.vendor == "postgresql" and outside_transaction:
                _load_overlapped(records, result, report)
            else:
                # Inside a caller's transaction (tests) everything stays on this connection.
                writer = _postgres_batch if connection.vendor == "postgresql" else _portable_batch
                size = POSTGRES_BATCH if connection.vendor == "postgresql" else PORTABLE_BATCH
                if connection.vendor == "postgresql":
                    _create_stage()
                while True:
                    counts, seen = writer(itertools.islice(records, size))
                    if not seen:
                        break
                    result.add(counts)
                    report()

        if source.endpoints is not None:
            rejects.prefix = "endpoint"
            result.endpoints, result.endpoints_removed = _load_companion(
                read_companion(source.endpoints(), ENDPOINT_COLUMNS, ENDPOINT_LENGTHS, rejects),
                "endpoint",
            )
        if source.locations is not None:
            rejects.prefix = "pl"
            result.locations, result.locations_removed = _load_companion(
                read_companion(source.locations(), LOCATION_COLUMNS, LOCATION_LENGTHS, rejects),
                "location",
            )
        report()
    if connection.vendor == "postgresql" and (result.imported or result.updated):
        # Fresh statistics, so the finder's plans see millions of rows and not an empty
        # table; outside a transaction also VACUUM, whose visibility map lets the finder's
        # covering indexes answer without reading the table.
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            cursor.execute(f"{command} {TABLE}")
    result.rejected = rejects.count
    result.filtered += reader.filtered
    result.repaired_floats |= reader.repaired_floats
    result.rejects_path = rejects.path if rejects.count else None
    return result


# --- A first load: build the secondary indexes once, after the rows ------------------------


def _pending_indexes_file() -> Path:
    return Path(settings.VAR_DIR) / "registry" / "indexes-to-rebuild.sql"


def _drop_indexes_if_empty() -> None:
    """Into an empty registry (a first load), maintaining the finder's six secondary indexes
    row by row cost about four times the insert itself; building them once at the end is far
    cheaper. Their definitions are written to a file first, so a load killed half-way gets
    them back at the start of the next import (`_restore_indexes`). The unique NPI index stays:
    the merge needs it. A registry that already holds rows keeps its indexes (a monthly update
    rewrites few rows, and the finder keeps working during it). Only the table's owner may
    drop its indexes: run as the app's narrower role (`create_app_role`), a first load keeps
    them and is slower."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE})")  # noqa: S608
        if cursor.fetchone()[0]:
            return
        cursor.execute(
            "SELECT pg_has_role((SELECT relowner FROM pg_class WHERE oid = %s::regclass), 'USAGE')",
            [TABLE],
        )
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            """
            SELECT i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = %s::regclass AND NOT x.indisunique AND NOT x.indisprimary
            """,
            [TABLE],
        )
        indexes = cursor.fetchall()
        if not indexes:
            return
        pending = _pending_indexes_file()
        pending.parent.mkdir(parents=True, exist_ok=True)
        pending.write_text("".join(f"{definition};\n" for _, definition in indexes))
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def _restore_indexes() -> None:
    pending = _pending_indexes_file()
    if not pending.exists():
        return
    with connection.cursor() as cursor:
        for statement in filter(None, (s.strip() for s in pending.read_text().split(";\n"))):
            cursor.execute(statement.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
    pending.unlink()


# --- Several processes, each a byte range of the file --------------------------------------


class _Bounded(io.RawIOBase):
    """Reads a binary file from its current position up to `end`, then reports end of file."""

    def __init__(self, raw: io.BufferedReader, end: int) -> None:
        self.raw = raw
        self.end = end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.end - self.raw.tell()
        if left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), left)]
        return self.raw.readinto(view) or 0

    def tell(self) -> int:
        return self.raw.tell()


def _byte_ranges(path: Path, jobs: int) -> list[tuple[int, int]]:
    """Split the data lines (after the header) into `jobs` ranges of about equal size, each
    starting at the beginning of a line. (NPPES fields hold no line breaks.)"""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.readline()
        start = handle.tell()
        cuts = [start]
        for k in range(1, jobs):
            handle.seek(max(cuts[-1], start + (size - start) * k // jobs))
            if handle.tell() > cuts[-1]:
                handle.readline()
            cuts.append(min(handle.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _lines_before(path: Path, offset: int) -> int:
    lines = 0
    with path.open("rb") as handle:
        while handle.tell() < offset:
            chunk = handle.read(min(8 << 20, offset - handle.tell()))
            if not chunk:
                break
            lines += chunk.count(b"\n")
    return lines


def _load_range(
    number: int,
    path: Path,
    span: tuple[int, int],
    reader_options: dict[str, Any],
    part: Path,
    done: Any,
    outcomes: Any,
) -> None:
    """One worker process: parse its range and load it, batch by batch, on its own
    connection; report counts (or the error) through `outcomes`."""
    rejects = _Rejects(part, prefix="npidata")
    try:
        start, end = span
        offset = _lines_before(path, start)

        def on_reject(rejection: Rejection) -> None:
            # The reader numbers lines from its own start (line 1 = the header it is given).
            rejects(Rejection(rejection.line + offset - 1, rejection.npi, rejection.reason))

        reader = ProviderReader(on_reject=on_reject, **reader_options)
        with path.open("rb") as raw:
            header = raw.readline().decode("utf-8", errors="replace")
            raw.seek(start)
            bounded = _Bounded(raw, end)
            text = text_stream(io.BufferedReader(bounded, buffer_size=1 << 20))
            records = reader.rows(itertools.chain([header], text))
            if connection.vendor == "postgresql":
                writer, size = _postgres_batch, POSTGRES_BATCH
                _create_stage()
            else:
                writer, size = _portable_batch, PORTABLE_BATCH
            totals = NppesImportResult()
            while True:
                counts, seen = writer(itertools.islice(records, size))
                if not seen:
                    break
                totals.add(counts)
                done[number] = bounded.tell() - start
        done[number] = end - start
        outcomes.put(
            (
                number,
                None,
                (totals.imported, totals.updated, totals.unchanged, totals.deactivated),
                reader.filtered,
                reader.repaired_floats,
            )
        )
    except BaseException as error:  # reported to the parent, which raises it
        outcomes.put((number, f"{type(error).__name__}: {error}", None, 0, False))
    finally:
        rejects.close()
        connection.close()


def _load_parallel(
    *,
    path: Path,
    jobs: int,
    reader: ProviderReader,
    rejects: _Rejects,
    result: NppesImportResult,
    progress: Progress | None,
) -> None:
    spans = _byte_ranges(path, jobs)
    total = path.stat().st_size
    # fork: the workers inherit the configured Django; each opens its own connection.
    context = multiprocessing.get_context("fork")
    done = context.Array("q", len(spans), lock=False)
    outcomes = context.Queue()
    parts = [rejects.path.with_name(f"{rejects.path.stem}.part{n}.csv") for n in range(len(spans))]
    options = {"states": reader.states, "taxonomy_prefixes": reader.taxonomy_prefixes}
    # Built once here, the ZIP centroid table is shared with the workers instead of each
    # loading the whole ZIP database.
    zip_centroid("68102")
    connections.close_all()
    workers = [
        context.Process(
            target=_load_range,
            args=(n, path, span, options, parts[n], done, outcomes),
            name=f"nppes-load-{n}",
        )
        for n, span in enumerate(spans)
    ]
    for worker in workers:
        worker.start()
    received: dict[int, tuple[Any, ...]] = {}
    try:
        while len(received) < len(workers):
            try:
                number, error, counts, filtered, repaired = outcomes.get(timeout=0.5)
            except queue.Empty:
                dead = [
                    w.name for n, w in enumerate(workers) if n not in received and not w.is_alive()
                ]
                if dead and outcomes.empty():
                    raise RuntimeError(f"{', '.join(dead)} stopped without a result") from None
            else:
                received[number] = (error, counts, filtered, repaired)
            if progress is not None:
                progress(sum(done), total)
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    for part in parts:
        rejects.append_part(part)
    errors = [error for error, *_ in received.values() if error]
    if errors:
        raise RuntimeError("The NPPES load failed: " + "; ".join(errors))
    for _, counts, filtered, repaired in received.values():
        result.add(counts)
        result.filtered += filtered
        result.repaired_floats |= repaired


# --- Postgres: COPY into staging, merge set-wise --------------------------------------------

_COLUMNS_SQL = ", ".join(PROVIDER_COLUMNS)
_KEEP_ON_STUB = [
    c for c in PROVIDER_COLUMNS if c not in ("npi", "deactivation_date", "deactivated")
]


def _create_stage() -> None:
    with connection.cursor() as cursor:
        # Temporary (never WAL-logged) and emptied at each batch's commit.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {_COLUMNS_SQL} FROM {TABLE} WITH NO DATA"
        )


def _load_overlapped(
    records: Iterator[tuple[Any, ...]], result: NppesImportResult, report: Callable[[], None]
) -> None:
    """Parse the next batch in this thread while a second thread (with its own connection)
    COPYs and merges the previous one. The merge runs inside Postgres with the GIL
    released, so parsing and merging use both CPUs at once."""
    handoff: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def merge_batches() -> None:
        try:
            _create_stage()
            while (batch := handoff.get()) is not None:
                counts, _ = _postgres_batch(iter(batch))
                result.add(counts)
                report()
        except BaseException as error:
            failure.append(error)
            # Keep taking batches so the reader never blocks on a dead consumer.
            while handoff.get() is not None:
                pass
        finally:
            connection.close()

    worker = threading.Thread(target=merge_batches, name="nppes-merge", daemon=True)
    worker.start()
    try:
        while not failure:
            batch = list(itertools.islice(records, POSTGRES_BATCH))
            if not batch:
                break
            handoff.put(batch)
    finally:
        handoff.put(None)
        worker.join()
    if failure:
        raise failure[0]


_MERGE_STUBS_SQL = f"""
UPDATE {STAGE} AS s
SET ({", ".join(_KEEP_ON_STUB)}) = ({", ".join("p." + c for c in _KEEP_ON_STUB)})
FROM {TABLE} AS p
WHERE s.npi = p.npi AND s.entity_type IS NULL
"""  # noqa: S608

_UPSERT_SQL = f"""
WITH old AS (
    SELECT npi, deactivated FROM {TABLE} WHERE npi IN (SELECT npi FROM {STAGE})
), changed AS (
    INSERT INTO {TABLE} AS r ({_COLUMNS_SQL})
    SELECT DISTINCT ON (npi) {_COLUMNS_SQL} FROM {STAGE} ORDER BY npi
    ON CONFLICT (npi) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in PROVIDER_COLUMNS if c != "npi")}
    WHERE ({", ".join("r." + c for c in PROVIDER_COLUMNS)})
        IS DISTINCT FROM ({", ".join("EXCLUDED." + c for c in PROVIDER_COLUMNS)})
    RETURNING npi, deactivated
)
SELECT
    count(*) FILTER (WHERE old.npi IS NULL AND NOT changed.deactivated),
    count(*) FILTER (WHERE old.npi IS NOT NULL AND (NOT changed.deactivated OR old.deactivated)),
    count(*) FILTER (WHERE changed.deactivated AND (old.npi IS NULL OR NOT old.deactivated))
FROM changed LEFT JOIN old USING (npi)
"""  # noqa: S608


def _postgres_batch(batch: Iterator[tuple[Any, ...]]) -> tuple[tuple[int, int, int, int], int]:
    seen = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # A crash loses at most the batches not yet flushed; the re-run redoes them.
        cursor.execute("SET LOCAL synchronous_commit = off")
        # Not only ON COMMIT: inside an outer transaction (tests, a caller's atomic block)
        # batches are savepoints and the stage would keep the previous batch.
        cursor.execute(f"TRUNCATE {STAGE}")
        with cursor.copy(f"COPY {STAGE} ({_COLUMNS_SQL}) FROM STDIN") as copy:
            for record in batch:
                copy.write_row(record)
                seen += 1
        if not seen:
            return (0, 0, 0, 0), 0
        cursor.execute(_MERGE_STUBS_SQL)
        cursor.execute(_UPSERT_SQL)
        imported, updated, deactivated = cursor.fetchone()
    unchanged = seen - imported - updated - deactivated
    return (imported, updated, unchanged, deactivated), seen


# --- Any database: compare in Python, write what differs -----------------------------------

_UPDATE_SQL = (
    f"UPDATE {TABLE} SET "  # noqa: S608
    + ", ".join(f"{c} = %s" for c in PROVIDER_COLUMNS[1:])
    + " WHERE npi = %s"
)
_STUB_KEEP_INDEXES = [PROVIDER_COLUMNS.index(c) for c in _KEEP_ON_STUB]


def _portable_batch(batch: Iterator[tuple[Any, ...]]) -> tuple[tuple[int, int, int, int], int]:
    from registry.models import RegistryProvider

    records: dict[str, tuple[Any, ...]] = {}
    for record in batch:
        records[record[0]] = record
    seen = len(records)
    if not seen:
        return (0, 0, 0, 0), 0
    imported = updated = deactivated = 0
    with transaction.atomic():
        existing = {
            row[0]: row
            for row in RegistryProvider.objects.filter(npi__in=list(records)).values_list(
                *PROVIDER_COLUMNS
            )
        }
        new: list[RegistryProvider] = []
        changed: list[tuple[Any, ...]] = []
        for npi, record in records.items():
            old = existing.get(npi)
            if old is not None and record[1] is None:
                # A deactivation stub keeps what we knew about the provider.
                merged = list(record)
                for i in _STUB_KEEP_INDEXES:
                    merged[i] = old[i]
                record = tuple(merged)
            if old is None:
                new.append(RegistryProvider(**dict(zip(PROVIDER_COLUMNS, record, strict=True))))
                if record[-1]:
                    deactivated += 1
                else:
                    imported += 1
            elif old != record:
                changed.append((*record[1:], npi))
                if record[-1] and not old[-1]:
                    deactivated += 1
                else:
                    updated += 1
        RegistryProvider.objects.bulk_create(new, batch_size=500)
        if changed:
            with connection.cursor() as cursor:
                cursor.executemany(_UPDATE_SQL, changed)
    unchanged = seen - imported - updated - deactivated
    return (imported, updated, unchanged, deactivated), seen


# --- Endpoints and secondary locations ------------------------------------------------------


def _load_companion(rows: Iterator[dict[str, Any]], kind: str) -> tuple[int, int]:
    """Insert the rows not already stored (recognised by their hash), for NPIs that are in
    the registry; then, for every NPI the file lists, remove stored rows the file no longer
    has (a Direct address that was withdrawn must not keep receiving letters). NPIs the
    file does not mention keep their rows: a weekly update lists only what changed.
    Returns (rows added, rows removed)."""
    from registry.geo import zip5, zip_centroid
    from registry.models import RegistryEndpoint, RegistryLocation, RegistryProvider

    # Either table, as a model: the code is the same for both.
    model: type[Model] = RegistryEndpoint if kind == "endpoint" else RegistryLocation
    added = 0
    # (NPI, row hash) of every row the file has for a registry NPI: a few tens of bytes
    # per row, so even the national endpoint file stays well inside the memory budget.
    listed: set[tuple[str, str]] = set()
    while True:
        batch = list(itertools.islice(rows, PORTABLE_BATCH))
        if not batch:
            return added, _remove_unlisted(model, listed)
        npis = {row["provider_id"] for row in batch}
        with transaction.atomic():
            known_npis = set(
                RegistryProvider.objects.filter(npi__in=npis).values_list("npi", flat=True)
            )
            known_rows = set(
                model._default_manager.filter(provider_id__in=known_npis).values_list(
                    "provider_id", "row_hash"
                )
            )
            objects = []
            for row in batch:
                key = (row["provider_id"], row["row_hash"])
                if row["provider_id"] not in known_npis:
                    continue
                listed.add(key)
                if key in known_rows:
                    continue
                known_rows.add(key)
                if kind == "location":
                    row["zip5"] = zip5(row["postal_code"])
                    row["latitude"], row["longitude"] = zip_centroid(row["zip5"]) or (None, None)
                objects.append(model(**row))
            model._default_manager.bulk_create(objects, batch_size=500)
            added += len(objects)


def _remove_unlisted(model: Any, listed: set[tuple[str, str]]) -> int:
    """Delete the stored rows of the NPIs in `listed` whose hash is not listed for them,
    a batch of NPIs at a time."""
    npis = sorted({npi for npi, _ in listed})
    removed = 0
    for start in range(0, len(npis), PORTABLE_BATCH):
        chunk = npis[start : start + PORTABLE_BATCH]
        stale = [
            pk
            for pk, npi, row_hash in model.objects.filter(provider_id__in=chunk).values_list(
                "pk", "provider_id", "row_hash"
            )
            if (npi, row_hash) not in listed
        ]
        if stale:
            removed += model.objects.filter(pk__in=stale).delete()[0]
    return removed
