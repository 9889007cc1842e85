from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

# Real public sample data kept next to the repository (never used by the product itself).
SHARED_DATA = Path(settings.BASE_DIR).parent / "shared" / "data"
NPPES_DIR = SHARED_DATA / "nppes"
SAMPLE = NPPES_DIR / "npidata_pfile_first1000_restored.csv"
MANGLED = NPPES_DIR / "npidata_pfile_first1000_pandas_mangled.csv"
NUCC_CSV = SHARED_DATA / "nucc" / "nucc_taxonomy_250.csv"


@pytest.fixture(autouse=True)
def _runtime_files_in_tmp(settings, tmp_path: Path) -> None:
    # Rejects files and uploads land in the test's own directory.
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def run_import() -> Callable[..., str]:
    """Runs `import_nppes` and returns its summary line."""

    def run(path: Path, *args: str) -> str:
        out = StringIO()
        call_command("import_nppes", str(path), "--no-progress", *args, stdout=out)
        return out.getvalue().strip()

    return run


def read_rows(path: Path = SAMPLE) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    # Like CMS: every field quoted, CRLF line ends.
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def damaged_bundle() -> bytes:
    """The NPPES zip with bytes in the middle of its data overwritten (a download cut and
    patched, a bad disk): its directory is whole, so it opens, and reading fails half-way."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLE, "npidata_pfile_20050523-20250209.csv")
    data = bytearray(buffer.getvalue())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    return bytes(data)
