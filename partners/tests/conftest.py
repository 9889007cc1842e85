"""Fixtures for the partner tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from partners.models import PartnerImport


@pytest.fixture
def confirm_import() -> Callable[..., Any]:
    """Press the preview's Import button: post the confirmation with the mapping the
    preview was computed from (as it stands now, as the page shows it)."""

    def confirm(client: Client, partner_import: PartnerImport, **extra: Any) -> Any:
        previewed = PartnerImport.objects.get(pk=partner_import.pk).mapping_version
        return client.post(
            reverse("partners:import_apply", args=[partner_import.pk]),
            {"previewed": previewed},
            **extra,
        )

    return confirm
