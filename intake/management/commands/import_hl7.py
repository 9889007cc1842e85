from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from intake.hl7 import Hl7Error
from intake.services import referral_import_hl7
from partners.models import Provider


class Command(BaseCommand):
    help = "Import an HL7 v2 OMG^O19 referral order (360X) as a received referral."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, help="One message per file.")
        parser.add_argument(
            "--provider-npi",
            help="The partner to credit when the message's provider has no known NPI.",
        )

    def handle(
        self, *args: Any, files: list[Path], provider_npi: str | None, **options: Any
    ) -> None:
        provider = None
        if provider_npi:
            provider = Provider.objects.filter(npi=provider_npi).first()
            if provider is None:
                raise CommandError(f"No partner has NPI {provider_npi}.")
        failures = 0
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as error:
                failures += 1
                self.stderr.write(f"{path}: cannot read it ({error.strerror}).")
                continue
            try:
                referral = referral_import_hl7(data=data, actor=None, provider=provider)
            except Hl7Error as error:
                failures += 1
                self.stderr.write(f"{path}: refused. {error}")
            else:
                # The referral number only: patient details never go to the console.
                self.stdout.write(f"{path}: imported as referral #{referral.pk}.")
        if failures:
            raise CommandError(f"{failures} of {len(files)} file(s) were not imported.")
