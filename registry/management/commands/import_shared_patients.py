from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.importing.progress import ProgressBar
from registry.importing.shared_patients import (
    REJECTIONS_SHOWN,
    SharedPatientFileError,
    shared_patients_import,
    year_and_window,
)


class Command(BaseCommand):
    help = (
        "Load a CMS Physician Shared Patient Patterns file (who saw the same Medicare "
        "patients after whom), replacing that year and window's pairs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the header-less .txt or .csv file from CMS")
        parser.add_argument("--year", type=int, help="the data's year (else read from the name)")
        parser.add_argument(
            "--window", type=int, help="the window in days: 30, 60, 90 or 180 (else from the name)"
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        named = year_and_window(path.name)
        year = options["year"] or (named[0] if named else None)
        window = options["window"] or (named[1] if named else None)
        if year is None or window is None:
            raise CommandError(
                "Give --year and --window: the file's name does not say them "
                "(CMS names its files like physician-shared-patient-patterns-2014-days180.txt)."
            )
        bar = None
        if not options["no_progress"] and options["verbosity"] > 0:
            bar = ProgressBar(cast(TextIO, self.stderr._out), label=path.name[:40])
        try:
            result = shared_patients_import(
                path=path, year=year, window_days=window, progress=bar.update if bar else None
            )
        except (SharedPatientFileError, OSError) as error:
            raise CommandError(f"Nothing was loaded: {error}") from error
        finally:
            if bar is not None:
                bar.finish()
        for rejection in result.rejections:
            self.stderr.write(rejection)
        if result.rejected > len(result.rejections):
            self.stderr.write(
                f"… and {result.rejected - len(result.rejections)} more rejected lines "
                f"(the first {REJECTIONS_SHOWN} are listed)."
            )
        self.stdout.write(result.summary)
