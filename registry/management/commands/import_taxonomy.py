from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.importing.taxonomy import SHIPPED_FILE, TaxonomyFileError, taxonomy_import


class Command(BaseCommand):
    help = "Load or refresh the NUCC taxonomy from its official CSV (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", nargs="?", type=Path, default=SHIPPED_FILE, help="NUCC taxonomy CSV"
        )

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            result = taxonomy_import(path=file)
        except (TaxonomyFileError, UnicodeDecodeError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(str(result))
