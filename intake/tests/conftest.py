from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from intake.services import intake_link_create
from partners.factories import OrganizationFactory, ProviderFactory

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def image(kind: str) -> bytes:
    """A small real image of this kind (PNG, JPEG, TIFF): uploads are read to the end."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=200).save(buffer, format=kind)
    return buffer.getvalue()


PNG = image("PNG")


@pytest.fixture(autouse=True)
def private_dir(settings: Any, tmp_path: Path) -> Path:
    """Each test stores documents in a directory of its own."""
    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    return settings.PRIVATE_STORAGE_ROOT


@pytest.fixture
def office(db: None) -> Any:
    organization = OrganizationFactory(name="Maple Family Practice")
    ProviderFactory(organization=organization, first_name="Grace", last_name="Hopper")
    ProviderFactory(organization=organization, first_name="Alan", last_name="Turing")
    return organization


@pytest.fixture
def link_and_token(office: Any, coordinator: Any) -> tuple[Any, str]:
    return intake_link_create(organization=office, actor=coordinator, label="front desk")


def office_form_data(office: Any, **overrides: Any) -> dict[str, Any]:
    provider = office.providers.order_by("pk").first()
    data = {
        "provider_choice": str(provider.pk),
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": "1950-04-02",
        "patient_phone": "(402) 555-0101",
        "reason": "Chronic knee pain",
        "urgency": "routine",
        "contact_name": "Dana at the front desk",
        "contact_phone": "(402) 555-0199",
    }
    return {**data, **overrides}


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []
