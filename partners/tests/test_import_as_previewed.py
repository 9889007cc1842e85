"""A partner import applies what the one confirming it saw: a mapping changed after their
preview (by a colleague, or in another tab) is refused with a message, not applied unseen;
and its rejected rows, once applied, are those the run refused, not a fresh plan against a
partner list that has changed since."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from partners.factories import OrganizationFactory, make_npi
from partners.models import PartnerImport, Provider

pytestmark = pytest.mark.django_db

NPI_A, NPI_B = make_npi(9101), make_npi(9102)
BAD_NPI = NPI_A[:9] + str((int(NPI_A[9]) + 1) % 10)


def _upload(client, rows) -> PartnerImport:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = client.post(
        reverse("partners:import_upload"),
        {"file": SimpleUploadedFile("partners.csv", buffer.getvalue().encode())},
    )
    assert response.status_code == 302
    return PartnerImport.objects.latest("pk")


def _mapping_post(partner_import: PartnerImport, **targets: str) -> dict[str, str]:
    data = {f"column_{index}": target for index, target in partner_import.mapping.items()}
    data.update(targets)
    data["new_owner"] = str(partner_import.new_owner_id or "")
    return data


SHEET = [
    ["NPI", "First Name", "Last Name", "Nickname"],
    [NPI_A, "Ana", "Reyes", "Annie"],
]


def test_a_mapping_a_colleague_changed_after_the_preview_is_refused_not_applied(
    client_for, manager, confirm_import
):
    mine, colleague = client_for(manager), client_for(manager)
    partner_import = _upload(mine, SHEET)
    preview = mine.get(partner_import.get_absolute_url()).content.decode()
    previewed = PartnerImport.objects.get(pk=partner_import.pk).mapping_version
    assert f'name="previewed" value="{previewed}"' in preview

    # The colleague maps the nickname column onto the first name.
    changed = colleague.post(
        reverse("partners:import_mapping", args=[partner_import.pk]),
        _mapping_post(partner_import, column_1="", column_3="first_name"),
    )
    assert changed.status_code == 302

    response = mine.post(
        reverse("partners:import_apply", args=[partner_import.pk]),
        {"previewed": previewed},
        follow=True,
    )
    assert "changed since this preview" in response.content.decode()
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.UPLOADED
    assert not Provider.objects.exists()

    # Confirmed from the preview as it is now, it applies what that preview showed.
    confirm_import(mine, partner_import)
    assert Provider.objects.get(npi=NPI_A).first_name == "Annie"


def test_an_owner_changed_after_the_preview_is_refused_too(client_for, manager, liaison):
    client = client_for(manager)
    partner_import = _upload(client, SHEET)
    previewed = partner_import.mapping_version
    PartnerImport.objects.filter(pk=partner_import.pk).update(new_owner=liaison)
    response = client.post(
        reverse("partners:import_apply", args=[partner_import.pk]),
        {"previewed": previewed},
        follow=True,
    )
    assert "changed since this preview" in response.content.decode()
    assert not Provider.objects.exists()


@pytest.mark.parametrize("data", [{}, {"previewed": ""}, {"previewed": "x" * 500}])
def test_a_confirmation_without_the_previews_mapping_imports_nothing_and_says_so(
    client_for, manager, data
):
    client = client_for(manager)
    partner_import = _upload(client, SHEET)
    response = client.post(
        reverse("partners:import_apply", args=[partner_import.pk]), data, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "confirm the import from its preview" in page or "changed since this preview" in page
    assert not Provider.objects.exists()


def test_a_mapping_page_opened_before_the_import_was_confirmed_cannot_change_it(
    client_for, manager, confirm_import
):
    client = client_for(manager)
    partner_import = _upload(client, SHEET)
    late = _mapping_post(partner_import, column_1="", column_3="first_name")
    confirm_import(client, partner_import)
    response = client.post(
        reverse("partners:import_mapping", args=[partner_import.pk]), late, follow=True
    )
    assert "confirmed meanwhile" in response.content.decode()
    partner_import.refresh_from_db()
    assert partner_import.mapping["1"] == "first_name" and "3" not in partner_import.mapping
    assert Provider.objects.get(npi=NPI_A).first_name == "Ana"


def test_the_rejected_rows_of_an_applied_import_are_those_its_run_refused(
    client_for, manager, confirm_import
):
    # One office of that name: a row without a ZIP code joins it.
    OrganizationFactory(name="Kearney FP", zip_code="68847")
    sheet = [
        ["NPI", "First Name", "Last Name", "Practice", "Zip"],
        [NPI_B, "Bo", "Lund", "Kearney FP", ""],
        [BAD_NPI, "Cy", "Moe", "", ""],
    ]
    client = client_for(manager)
    partner_import = _upload(client, sheet)
    confirm_import(client, partner_import)
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.APPLIED
    assert partner_import.result["reject"] == 1
    # Since then a second office of that name: planned again, the ZIP-less row would be
    # refused too, though it was imported.
    OrganizationFactory(name="Kearney FP", zip_code="68845")

    response = client.get(reverse("partners:import_rejects", args=[partner_import.pk]))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0] == ["Row", "NPI", "First Name", "Last Name", "Practice", "Zip", "Reasons"]
    assert [line[:3] for line in lines[1:]] == [["3", BAD_NPI, "Cy"]]
    assert Provider.objects.get(npi=NPI_B).organization.zip_code == "68847"
