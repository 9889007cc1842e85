"""Loading an NPPES download into the registry tables: the provider file (in batches, by
one process or several: nppes_write, nppes_parallel), then the endpoint and secondary
location files that come with it in the monthly zip.
"""

from __future__ import annotations

import itertools
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from registry.importing.nppes_file import (
    ENDPOINT_COLUMNS,
    ENDPOINT_LENGTHS,
    LOCATION_COLUMNS,
    LOCATION_LENGTHS,
    NppesFileError,
    ProviderReader,
    open_source,
    read_companion,
)
from registry.importing.nppes_parallel import load_parallel
from registry.importing.nppes_result import NppesImportResult, Rejects
from registry.importing.nppes_write import PORTABLE_BATCH, TABLE, batch_writer, load_overlapped

Progress = Callable[[int, int], None]

__all__ = ["NppesFileError", "NppesImportResult", "nppes_import"]


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
    rejects = Rejects(rejects_path or default_rejects_path(path))
    reader = ProviderReader(states=states, taxonomy_prefixes=taxonomy_prefixes, on_reject=rejects)
    result = NppesImportResult()
    outside_transaction = not connection.in_atomic_block
    bulk = connection.vendor == "postgresql" and outside_transaction
    if bulk:
        _restore_indexes()  # from an earlier load that was killed before it rebuilt them
    with _damage_refused(path), ExitStack() as stack:
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
            load_parallel(
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
                load_overlapped(records, result, report)
            else:
                # Inside a caller's transaction (tests) everything stays on this connection.
                writer, size = batch_writer()
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


@contextmanager
def _damage_refused(path: Path) -> Iterator[None]:
    """A zip whose directory is whole but whose data is not (a download cut short and
    patched, a bad disk) opens, and fails half-way through: say so, as for any file that
    cannot be read, rather than end with a traceback or a job left running."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise NppesFileError(
            f"{path.name} is damaged: it could not be read to the end ({error}). The rows "
            "before the damage are loaded; download the file again and import it (rows "
            "already loaded are not loaded twice)."
        ) from error


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
