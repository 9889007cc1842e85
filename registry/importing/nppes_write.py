"""Writing batches of parsed provider rows into the registry table.

Postgres: each batch is COPied into a temporary staging table and merged with one
`INSERT ... ON CONFLICT (npi) DO UPDATE ... WHERE (row differs)`, so a re-run of the same
month writes nothing and a newer month rewrites only the rows CMS changed. Other databases
(SQLite in development) take a slower batched path with the same results.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection, transaction

from registry.importing.nppes_file import PROVIDER_COLUMNS
from registry.importing.nppes_result import Counts, NppesImportResult

TABLE = "registry_registryprovider"
STAGE = "registry_nppes_stage"
# Rows per COPY + merge: big enough to amortise the merge, small enough to keep memory flat.
POSTGRES_BATCH = 25_000
PORTABLE_BATCH = 2_000
Writer = Callable[[Iterator[tuple[Any, ...]]], tuple[Counts, int]]


def batch_writer() -> tuple[Writer, int]:
    """The batch writer for this connection's database, and its batch size. On Postgres the
    caller's connection gets the staging table it writes through."""
    if connection.vendor == "postgresql":
        create_stage()
        return postgres_batch, POSTGRES_BATCH
    return portable_batch, PORTABLE_BATCH


_COLUMNS_SQL = ", ".join(PROVIDER_COLUMNS)
_KEEP_ON_STUB = [
    c for c in PROVIDER_COLUMNS if c not in ("npi", "deactivation_date", "deactivated")
]


def create_stage() -> None:
    with connection.cursor() as cursor:
        # Temporary (never WAL-logged) and emptied at each batch's commit.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {_COLUMNS_SQL} FROM {TABLE} WITH NO DATA"
        )


def load_overlapped(
    records: Iterator[tuple[Any, ...]], result: NppesImportResult, report: Callable[[], None]
) -> None:
    """Parse the next batch in this thread while a second thread (with its own connection)
    COPYs and merges the previous one. The merge runs inside Postgres with the GIL
    released, so parsing and merging use both CPUs at once."""
    handoff: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def merge_batches() -> None:
        try:
            create_stage()
            while (batch := handoff.get()) is not None:
                counts, _ = postgres_batch(iter(batch))
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


def postgres_batch(batch: Iterator[tuple[Any, ...]]) -> tuple[Counts, int]:
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


_UPDATE_SQL = (
    f"UPDATE {TABLE} SET "  # noqa: S608
    + ", ".join(f"{c} = %s" for c in PROVIDER_COLUMNS[1:])
    + " WHERE npi = %s"
)
_STUB_KEEP_INDEXES = [PROVIDER_COLUMNS.index(c) for c in _KEEP_ON_STUB]


def portable_batch(batch: Iterator[tuple[Any, ...]]) -> tuple[Counts, int]:
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
