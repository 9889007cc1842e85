"""CMS Physician Shared Patient Patterns: loading the real files' layout, and the partner
page's card of where a partner's Medicare patients went next and came from."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partners.factories import ProviderFactory, make_npi
from registry.factories import RegistryProviderFactory
from registry.models import SharedPatientDataset, SharedPatientPair
from registry.tests.conftest import SHARED_DATA

pytestmark = pytest.mark.django_db

PATTERNS = SHARED_DATA / "shared_patient_patterns"
# Five real rows of the 2014 file, 180-day window, header-less as CMS ships them.
HEAD5 = PATTERNS / "physician-shared-patient-patterns-2014-days180_head5.txt"
HEADER = PATTERNS / "physician-shared-patient-patterns_FileHeader.csv"
# A derived, 11-column merge of two years: not a file CMS publishes.
COMBINED = PATTERNS / "gpinho_testing-combine-referral_2014_2015.csv"
FIRST, SECOND = "1063590222", "1760575641"  # the first real pair: 96 visits, 27 patients


def _load(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_shared_patients", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _pairs() -> set[tuple[str, str, int, int, int]]:
    return set(
        SharedPatientPair.objects.values_list(
            "npi_from", "npi_to", "shared_count", "patients", "same_day_visits"
        )
    )


def test_the_real_file_loads_with_its_year_and_window_from_its_name_and_again_the_same():
    out, _ = _load(HEAD5)
    dataset = SharedPatientDataset.objects.get()
    assert (dataset.year, dataset.window_days, dataset.pair_count) == (2014, 180, 5)
    assert "imported 5 pairs, rejected 0 lines" in out
    first = _pairs()
    assert (FIRST, SECOND, 96, 27, 3) in first
    assert len(first) == 5

    _load(HEAD5)  # a re-run leaves the same pairs, once
    assert _pairs() == first
    assert SharedPatientDataset.objects.count() == 1


def test_the_zip_from_cms_loads_from_the_command_line_and_a_damaged_one_loads_nothing(tmp_path):
    import zipfile

    download = tmp_path / "physician-shared-patient-patterns-2014-days180.zip"
    with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(HEAD5, "physician-shared-patient-patterns-2014-days180.txt")
        archive.write(HEADER, "physician-shared-patient-patterns_FileHeader.csv")
    out, _ = _load(download)
    assert "imported 5 pairs, rejected 0 lines" in out
    loaded = _pairs()
    assert (FIRST, SECOND, 96, 27, 3) in loaded

    damaged = tmp_path / "physician-shared-patient-patterns-2014-days180-copy.zip"
    damaged.write_bytes(download.read_bytes()[:200])
    with pytest.raises(CommandError, match="is not a zip archive"):
        _load(damaged)
    assert _pairs() == loaded


def test_a_zip_damaged_half_way_loads_nothing_and_says_so(tmp_path):
    import zipfile

    _load(HEAD5)
    loaded = _pairs()
    # A national file in small: pairs enough that the damage falls inside the data.
    lines = [f"{make_npi(n)},{make_npi(n + 1)},{20 + n % 50},11,0" for n in range(5000)]
    download = tmp_path / "physician-shared-patient-patterns-2014-days180.zip"
    with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("physician-shared-patient-patterns-2014-days180.txt", "\n".join(lines))
    data = bytearray(download.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    download.write_bytes(bytes(data))

    with pytest.raises(CommandError, match=r"Nothing was loaded: .* is damaged"):
        _load(download)
    assert _pairs() == loaded


def test_a_header_row_is_skipped_and_bad_lines_are_reported_by_number(tmp_path):
    sheet = tmp_path / "patterns.csv"
    lines = [
        HEADER.read_text().strip(),
        *HEAD5.read_text().split(),
        f"{FIRST[:9]}3,{SECOND},10,11,0",  # a wrong check digit
        f"{FIRST},{SECOND},10",  # too short
        f"{FIRST},1427005735,many,11,0",  # not a count
        f"{FIRST},{SECOND},1,11,0",  # the first pair again
        "",
        f"{SECOND},{FIRST},69.0,11.0,0.0",  # counts a spreadsheet wrote as floats
    ]
    sheet.write_text("\n".join(lines) + "\n")
    out, err = _load(sheet, "--year", "2015", "--window", "30")
    assert "imported 6 pairs, rejected 3 lines, 1 repeated pairs kept once" in out
    assert "Line 7: Initial Physician NPI “1063590223”: This NPI's check digit is wrong" in err
    assert "Line 8: 3 columns instead of 5." in err
    assert "Line 9: Shared Count “many” is not a whole number." in err
    pairs = _pairs()
    assert (FIRST, SECOND, 96, 27, 3) in pairs  # the first line of a repeated pair holds
    assert (SECOND, FIRST, 69, 11, 0) in pairs


def test_another_file_chosen_by_mistake_loads_nothing_and_keeps_the_last_load(tmp_path):
    _load(HEAD5)
    before = _pairs()
    with pytest.raises(CommandError, match="not a CMS shared patient patterns file"):
        _load(COMBINED, "--year", "2014", "--window", "180")
    assert _pairs() == before
    with pytest.raises(CommandError, match="no pairs"):
        _load(HEADER, "--year", "2014", "--window", "180")
    assert _pairs() == before

    unnamed = tmp_path / "pairs.txt"
    shutil.copy(HEAD5, unnamed)
    with pytest.raises(CommandError, match="Give --year and --window"):
        _load(unnamed)
    with pytest.raises(CommandError, match="windows of 30, 60, 90, 180 days, not 45"):
        _load(unnamed, "--year", "2014", "--window", "45")
    assert _pairs() == before


def test_the_partner_page_loads_the_card_of_where_their_patients_went(
    client_for, liaison, settings
):
    _load(HEAD5)
    settings.PRACTICE_NPIS = [SECOND]
    partner = ProviderFactory(npi=FIRST, first_name="Ada", last_name="Quist")
    page = client_for(liaison).get(reverse("partners:provider_detail", args=[partner.pk]))
    url = reverse("partners:provider_shared_patients", args=[partner.pk])
    assert f'hx-get="{url}"' in page.content.decode()

    card = client_for(liaison).get(url).content.decode()
    assert "Shared Medicare patients" in card
    assert "our clinician" in card
    assert "<strong>27</strong> of 27 went on to our clinicians (100%)" in card
    assert "Their patients came from" not in card  # nobody sent them patients first
    assert "2014" in card and "180 days" in card

    # Seen from our clinician's side: the partner came first, and is linked.
    ours = ProviderFactory(npi=SECOND, first_name="Bo", last_name="Berg")
    card = (
        client_for(liaison)
        .get(reverse("partners:provider_shared_patients", args=[ours.pk]))
        .content.decode()
    )
    assert "Their patients came from" in card
    assert f'href="{partner.get_absolute_url()}">Ada Quist' in card


def test_the_card_names_physicians_from_the_registry_in_the_same_queries_however_many(
    client_for, manager, settings
):
    dataset = SharedPatientDataset.objects.create(
        year=2015, window_days=30, file_name="x.txt", imported_at="2026-01-01T00:00Z"
    )
    partner = ProviderFactory(npi=make_npi(8000))
    client = client_for(manager)
    url = reverse("partners:provider_shared_patients", args=[partner.pk])

    def add_peers(numbers: range) -> None:
        for number in numbers:
            RegistryProviderFactory(npi=make_npi(number), last_name=f"PEER{number}")
            SharedPatientPair.objects.create(
                dataset=dataset,
                npi_from=partner.npi,
                npi_to=make_npi(number),
                shared_count=20,
                patients=11 + number - 8001,
                same_day_visits=0,
            )

    add_peers(range(8001, 8002))
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        card = client.get(url).content.decode()
    assert "PEER8001" in card and "Family Medicine" in card
    add_peers(range(8002, 8015))
    with CaptureQueriesContext(connection) as many:
        card = client.get(url).content.decode()
    assert len(many) == len(one)
    assert card.count("PEER80") == 10  # the ten with the most patients, most first
    assert card.index("PEER8014") < card.index("PEER8013")
    assert "PEER8004" not in card
    assert "went on to our clinicians" not in card  # PRACTICE_NPIS is not set


def test_without_data_the_card_is_empty_and_without_the_right_it_is_refused(
    client_for, liaison, no_role_user
):
    partner = ProviderFactory()
    url = reverse("partners:provider_shared_patients", args=[partner.pk])
    response = client_for(liaison).get(url)
    assert response.status_code == 200
    assert response.content.decode().strip() == ""
    assert client_for(no_role_user).get(url).status_code == 403


def test_the_finder_finds_whose_medicare_patients_come_on_to_us(client_for, manager, settings):
    _load(HEAD5)
    finder = reverse("registry:finder")
    client = client_for(manager)
    # Without our clinicians' NPIs there is nothing to search by: the box is not offered,
    # and a link that asks anyway is answered with why.
    assert 'name="sends_to_us"' not in client.get(finder).content.decode()
    refused = client.get(finder, {"sends_to_us": "on"})
    assert "PRACTICE_NPIS" in refused.content.decode()
    assert refused.context["page"] is None

    settings.PRACTICE_NPIS = [SECOND]
    sender = RegistryProviderFactory(npi=FIRST, last_name="SENDER")
    bystander = RegistryProviderFactory(last_name="BYSTANDER")
    assert 'name="sends_to_us"' in client.get(finder).content.decode()
    found = client.get(finder, {"sends_to_us": "on"})
    assert [row.record.npi for row in found.context["rows"]] == [sender.npi]
    assert "27 Medicare patients on to us (CMS)" in found.content.decode()

    both = client.get(finder, {"state": "OH"})
    by_npi = {row.record.npi: row.to_us for row in both.context["rows"]}
    assert by_npi == {sender.npi: 27, bystander.npi: 0}


def test_a_file_of_which_no_line_can_be_read_loads_nothing_and_keeps_the_last_load(tmp_path):
    # Five columns, so it looks like the right file, but every line is refused (here the
    # NPIs came quoted out of another tool): the year's pairs are not replaced by none.
    _load(HEAD5)
    before = _pairs()
    quoted = tmp_path / "physician-shared-patient-patterns-2014-days180.txt"
    quoted.write_text(
        "".join(
            '"{}","{}",{},{},{}\n'.format(*line.split(",")) for line in HEAD5.read_text().split()
        )
    )
    with pytest.raises(CommandError, match="no line of it could be read"):
        _load(quoted)
    assert _pairs() == before
    assert SharedPatientDataset.objects.get().pair_count == 5


def test_a_count_too_large_for_the_database_rejects_its_line(tmp_path):
    sheet = tmp_path / "physician-shared-patient-patterns-2014-days30.txt"
    sheet.write_text(f"{FIRST},{SECOND},96,27,3\n{SECOND},{FIRST},3000000000,27,3\n")
    out, err = _load(sheet)
    assert "imported 1 pairs, rejected 1 lines" in out
    assert "Line 2: Shared Count “3000000000” is more than" in err
    assert _pairs() == {(FIRST, SECOND, 96, 27, 3)}


def test_the_card_of_a_partner_whose_pairs_count_no_patients_has_no_share(
    tmp_path, client_for, liaison, settings
):
    # CMS leaves such pairs out, but a file made by hand or by another tool may hold them:
    # the card shows the pair, with no share of nothing.
    sheet = tmp_path / "physician-shared-patient-patterns-2014-days30.txt"
    sheet.write_text(f"{FIRST},{SECOND},0,0,0\n")
    _load(sheet)
    settings.PRACTICE_NPIS = [SECOND]
    partner = ProviderFactory(npi=FIRST)
    url = reverse("partners:provider_shared_patients", args=[partner.pk])
    response = client_for(liaison).get(url)
    assert response.status_code == 200
    card = response.content.decode()
    assert "Their patients went on to" in card
    assert 'data-testid="share-to-us"' not in card
