"""Loading a plain NPPES CSV with several processes, each parsing and loading its own byte
range of the file on its own connection (parsing 330 columns in Python is the slow part)."""

from __future__ import annotations

import io
import itertools
import multiprocessing
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection, connections

from registry.geo import zip_centroid
from registry.importing.nppes_file import ProviderReader, Rejection, text_stream
from registry.importing.nppes_result import NppesImportResult, Rejects
from registry.importing.nppes_write import batch_writer

Progress = Callable[[int, int], None]


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


def byte_ranges(path: Path, jobs: int) -> list[tuple[int, int]]:
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


def lines_before(path: Path, offset: int) -> int:
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
    rejects = Rejects(part, prefix="npidata")
    try:
        start, end = span
        offset = lines_before(path, start)

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
            writer, size = batch_writer()
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


def load_parallel(
    *,
    path: Path,
    jobs: int,
    reader: ProviderReader,
    rejects: Rejects,
    result: NppesImportResult,
    progress: Progress | None,
) -> None:
    spans = byte_ranges(path, jobs)
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
