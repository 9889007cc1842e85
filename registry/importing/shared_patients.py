"""Loading a CMS "Physician Shared Patient Patterns" file (the DocGraph referral graph).

CMS ships each year and window (30, 60, 90 or 180 days) as a header-less, comma-separated
file of five columns, naming them in a separate header file: Initial Physician NPI,
Secondary Physician NPI, Shared Count, Number Unique Beneficiaries, Number Same Day Visits.
A load replaces that year and window's pairs in one transaction, so a re-run of the same
file leaves the same pairs, and a failed one leaves the previous load as it was. The file
may be given as CMS's zip download, read without unpacking it.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from core.npi import validate_npi
from registry.models import SharedPatientDataset, SharedPatientPair

BATCH_SIZE = 5000
# Lines between two redraws of the progress bar.
PROGRESS_EVERY = 20000
COLUMNS = (
    "Initial Physician NPI",
    "Secondary Physician NPI",
    "Shared Count",
    "Number Unique Beneficiaries",
    "Number Same Day Visits",
)
# physician-shared-patient-patterns-2014-days180.txt, DocGraph-2012-2013-Days30.csv
_NAMED = re.compile(r"(?P<year>20\d\d)[-_](?:20\d\d[-_])?days(?P<window>\d+)", re.IGNORECASE)
# The rejected lines the result quotes by number; the rest are counted.
REJECTIONS_SHOWN = 20
# The largest count a Postgres integer column holds: a larger one would end the whole
# COPY with an error there (SQLite would take it), so its line is rejected on both.
MAX_COUNT = 2**31 - 1


class SharedPatientFileError(Exception):
    """The file is not a shared patient patterns file: nothing was loaded."""


@dataclass
class SharedPatientResult:
    dataset: SharedPatientDataset
    imported: int = 0
    rejected: int = 0
    repeated: int = 0
    rejections: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        line = f"{self.dataset}: imported {self.imported} pairs, rejected {self.rejected} lines"
        if self.repeated:
            line += f", {self.repeated} repeated pairs kept once"
        return line


def year_and_window(name: str) -> tuple[int, int] | None:
    """The year and window a CMS file name gives ("…-2014-days180.txt" → 2014, 180)."""
    found = _NAMED.search(name)
    if found is None:
        return None
    return int(found["year"]), int(found["window"])


def _whole(text: str) -> int | None:
    """A count: digits, or the same written as a float by a spreadsheet ("69.0")."""
    text = text.strip().removesuffix(".0")
    return int(text) if text.isascii() and text.isdigit() else None


def _problem(fields: list[str]) -> str | None:
    if len(fields) != len(COLUMNS):
        return f"{len(fields)} columns instead of {len(COLUMNS)}."
    for name, npi in zip(COLUMNS[:2], fields[:2], strict=True):
        try:
            validate_npi(npi.strip())
        except ValidationError as error:
            return f"{name} “{npi.strip()[:20]}”: {error.messages[0]}"
    for name, count in zip(COLUMNS[2:], fields[2:], strict=True):
        whole = _whole(count)
        if whole is None:
            return f"{name} “{count.strip()[:20]}” is not a whole number."
        if whole > MAX_COUNT:
            return f"{name} “{count.strip()[:20]}” is more than {MAX_COUNT:,}."
    return None


def _is_header(fields: list[str]) -> bool:
    return bool(fields) and not fields[0].strip().isdigit()


def shared_patients_import(
    *,
    path: Path,
    year: int,
    window_days: int,
    file_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SharedPatientResult:
    """Load the file as the pairs of `year` and `window_days`, replacing any loaded before.
    Lines that cannot be read are counted and the first few quoted by number; a file whose
    first line of data is not five columns, or of which no line can be read, is refused
    whole (another file chosen by mistake), as is a window CMS does not publish.
    `file_name` is the name the dataset records (an upload's own, not the stored file's);
    by default the path's."""
    if window_days not in SharedPatientDataset.Window.values:
        windows = ", ".join(str(days) for days in SharedPatientDataset.Window.values)
        raise SharedPatientFileError(f"CMS publishes windows of {windows} days, not {window_days}.")
    if not 2000 <= year <= 2100:
        raise SharedPatientFileError(f"{year} is not a year of CMS data.")
    file_name = (file_name or path.name)[:255]
    with _damage_refused(path), transaction.atomic(), ExitStack() as stack:
        dataset, _ = SharedPatientDataset.objects.select_for_update().get_or_create(
            year=year,
            window_days=window_days,
            defaults={"file_name": file_name, "imported_at": timezone.now()},
        )
        SharedPatientPair.objects.filter(dataset=dataset).delete()
        result = SharedPatientResult(dataset=dataset)
        data = stack.enter_context(_opened(path))
        total = data.size
        rows = _read(data.stream, result, total, progress)
        write = _copy if connection.vendor == "postgresql" else _bulk_create
        accepted = write(dataset, rows)
        if not accepted:
            # Five columns, yet not one pair: the wrong file, or one another tool rewrote.
            # Raised inside the transaction, so the year's last load stays as it was.
            raise SharedPatientFileError(
                f"no line of it could be read ({result.rejections[0]}), so the pairs "
                "loaded before are kept."
            )
        result.imported = SharedPatientPair.objects.filter(dataset=dataset).count()
        result.repeated = accepted - result.imported
        dataset.file_name = file_name
        dataset.pair_count = result.imported
        dataset.imported_at = timezone.now()
        dataset.save(update_fields=["file_name", "pair_count", "imported_at"])
    if progress:
        progress(total, total)
    return result


@contextmanager
def _damage_refused(path: Path) -> Iterator[None]:
    """A zip whose directory is whole but whose data is not opens, and fails half-way
    through: refused like any file that cannot be read (the transaction has rolled back)."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise SharedPatientFileError(
            f"{path.name} is damaged: it could not be read to the end ({error}). Download it "
            "again and load it."
        ) from error


Pair = tuple[str, str, int, int, int]
# What a zip may hold besides the data: CMS's header and readme files, a Mac's folder.
_DATA_SUFFIXES = (".txt", ".csv")


@dataclass
class _Data:
    stream: IO[bytes]
    size: int  # bytes to read, for progress (uncompressed, from a zip)


@contextmanager
def _opened(path: Path) -> Iterator[_Data]:
    """The file's bytes: the file itself, or the one data file in CMS's zip (its header
    file, named "...HEADER...", and anything in __MACOSX aside)."""
    if not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip":
            raise SharedPatientFileError(
                f"{path.name} is not a zip archive (damaged, or not the download from CMS)."
            )
        with path.open("rb") as file:
            yield _Data(file, path.stat().st_size)
        return
    with zipfile.ZipFile(path) as archive:
        members = [
            member
            for member in archive.infolist()
            if not member.is_dir()
            and member.filename.lower().endswith(_DATA_SUFFIXES)
            and "header" not in member.filename.lower()
            and not member.filename.startswith("__MACOSX/")
        ]
        if len(members) != 1:
            names = ", ".join(member.filename for member in members[:5])
            raise SharedPatientFileError(
                f"The zip holds {len(members)} data files"
                + (f" ({names})" if members else "")
                + ": it should hold one .txt or .csv file of pairs."
            )
        with archive.open(members[0]) as member:
            yield _Data(member, members[0].file_size)


def _read(
    file: IO[bytes],
    result: SharedPatientResult,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[Pair]:
    """The file's pairs, each line checked: one that cannot be read is counted in
    `result` (the first few quoted by number) and left out."""
    read = 0
    data_seen = False
    for number, raw in enumerate(file, start=1):
        read += len(raw)
        if progress and number % PROGRESS_EVERY == 0:
            progress(read, total)
        line = raw.decode("utf-8-sig", errors="replace").strip()
        if not line:
            continue
        fields = line.split(",")
        if not data_seen:
            if number == 1 and _is_header(fields):
                if len(fields) != len(COLUMNS):
                    raise SharedPatientFileError(_not_this_file(len(fields)))
                continue
            if len(fields) != len(COLUMNS):
                raise SharedPatientFileError(_not_this_file(len(fields)))
            data_seen = True
        problem = _problem(fields)
        if problem is not None:
            result.rejected += 1
            if len(result.rejections) < REJECTIONS_SHOWN:
                result.rejections.append(f"Line {number}: {problem}")
            continue
        yield (
            fields[0].strip(),
            fields[1].strip(),
            _whole(fields[2]) or 0,
            _whole(fields[3]) or 0,
            _whole(fields[4]) or 0,
        )
    if not data_seen:
        raise SharedPatientFileError("The file holds no pairs.")


_FIELDS = ("npi_from", "npi_to", "shared_count", "patients", "same_day_visits")


def _copy(dataset: SharedPatientDataset, rows: Iterator[Pair]) -> int:
    """Postgres: COPY into a staging table, then one INSERT that keeps a repeated pair's
    first line. Several times faster than INSERTs for a national file."""
    table = SharedPatientPair._meta.db_table
    columns = ", ".join(_FIELDS)
    accepted = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE shared_pairs_stage (line bigserial, npi_from varchar(10), "
            "npi_to varchar(10), shared_count integer, patients integer, "
            "same_day_visits integer) ON COMMIT DROP"
        )
        with cursor.copy(f"COPY shared_pairs_stage ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                accepted += 1
        cursor.execute(
            f"INSERT INTO {table} (dataset_id, {columns}) "  # noqa: S608
            f"SELECT DISTINCT ON (npi_from, npi_to) %s, {columns} FROM shared_pairs_stage "
            "ORDER BY npi_from, npi_to, line",
            [dataset.pk],
        )
        cursor.execute("DROP TABLE shared_pairs_stage")
    return accepted


def _bulk_create(dataset: SharedPatientDataset, rows: Iterator[Pair]) -> int:
    accepted = 0
    batch: list[SharedPatientPair] = []
    for row in rows:
        batch.append(SharedPatientPair(dataset=dataset, **dict(zip(_FIELDS, row, strict=True))))
        accepted += 1
        if len(batch) >= BATCH_SIZE:
            _write(batch)
    _write(batch)
    return accepted


def _write(batch: list[SharedPatientPair]) -> None:
    # A pair repeated in the file is kept once (its first line), and counted as repeated.
    SharedPatientPair.objects.bulk_create(batch, batch_size=BATCH_SIZE, ignore_conflicts=True)
    batch.clear()


def _not_this_file(columns: int) -> str:
    return (
        "This is not a CMS shared patient patterns file: it has "
        f"{columns} columns where one has {len(COLUMNS)} ({', '.join(COLUMNS)})."
    )
