import os
from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.importing.nppes_load import NppesFileError, nppes_import
from registry.importing.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Load the CMS NPPES monthly file (npidata_pfile_*.csv, or the whole zip bundle with "
        "its endpoint and secondary-location files) into the provider registry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="npidata_pfile_*.csv or the NPPES zip")
        parser.add_argument(
            "--state",
            action="append",
            default=[],
            metavar="XX",
            help="Only providers practising in this state (repeatable).",
        )
        parser.add_argument(
            "--taxonomy",
            action="append",
            default=[],
            metavar="PREFIX",
            help="Only providers with a taxonomy code starting with PREFIX (repeatable).",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=min(2, os.cpu_count() or 1),
            metavar="N",
            help="Parse a plain CSV file in N processes (default: up to 2; a zip uses one).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        states = frozenset(s.strip().upper() for s in options["state"])
        if any(len(s) != 2 or not s.isalpha() for s in states):
            raise CommandError("--state takes a two-letter code, e.g. --state NE.")
        bar = None
        if not options["no_progress"] and options["verbosity"] > 0:
            # The stream under the wrapper (which would end every redraw with a newline);
            # private, so the stubs leave it out.
            bar = ProgressBar(cast(TextIO, self.stderr._out), label=path.name[:40])
        try:
            result = nppes_import(
                path=path,
                states=states,
                taxonomy_prefixes=tuple(t.strip().upper() for t in options["taxonomy"]),
                progress=bar.update if bar else None,
                jobs=max(1, options["jobs"]),
            )
        except (NppesFileError, UnicodeDecodeError) as error:
            raise CommandError(str(error)) from error
        finally:
            if bar is not None:
                bar.finish()
        if result.repaired_floats:
            self.stderr.write(
                "Note: this file was re-saved by a spreadsheet or pandas (numbers such as "
                "“1.0”); the digits of NPIs, ZIP codes and phone numbers were restored."
            )
        line = result.summary
        if result.rejects_path:
            line += f"; rejected rows and reasons: {result.rejects_path}"
        self.stdout.write(line)
