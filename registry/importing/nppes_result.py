"""What an NPPES import reports: its counts, and the CSV of the rows it rejected."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from registry.importing.nppes_file import Rejection

Counts = tuple[int, int, int, int]  # imported, updated, unchanged, deactivated


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

    def add(self, counts: Counts) -> None:
        self.imported += counts[0]
        self.updated += counts[1]
        self.unchanged += counts[2]
        self.deactivated += counts[3]


@dataclass
class Rejects:
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
