from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError

from registry.factories import make_npi
from registry.importing.nppes_file import PROVIDER_COLUMNS
from registry.models import RegistryEndpoint, RegistryLocation, RegistryProvider
from registry.tests.conftest import (
    MANGLED,
    NPPES_DIR,
    SAMPLE,
    damaged_bundle,
    read_rows,
    write_rows,
)

pytestmark = pytest.mark.django_db

Run = Callable[..., str]


def column(header: list[str], name: str) -> int:
    return header.index(name)


def test_it_imports_the_real_sample_with_every_row_accounted_for(run_import: Run) -> None:
    summary = run_import(SAMPLE)

    assert summary == "imported 921, updated 0, unchanged 0, deactivated 79, rejected 0"
    assert RegistryProvider.objects.count() == 1000
    assert RegistryProvider.objects.filter(entity_type=1).count() == 733
    assert RegistryProvider.objects.filter(entity_type=2).count() == 188
    assert RegistryProvider.objects.filter(deactivated=True).count() == 79


def test_it_stores_the_real_values_of_a_provider(run_import: Run) -> None:
    run_import(SAMPLE)

    wiebe = RegistryProvider.objects.get(npi="1679576722")
    assert (wiebe.first_name, wiebe.middle_name, wiebe.last_name) == ("DAVID", "A", "WIEBE")
    assert wiebe.credential == "M.D."
    assert wiebe.sex == "M"
    assert wiebe.primary_taxonomy_code == "207X00000X"
    assert wiebe.address_line1 == "3500 CENTRAL AVE"
    assert (wiebe.city, wiebe.state, wiebe.postal_code, wiebe.zip5) == (
        "KEARNEY",
        "NE",
        "688472944",
        "68847",
    )
    assert wiebe.phone == "3088652512"
    assert wiebe.fax == "3088652506"
    assert wiebe.mailing_address_line1 == "PO BOX 2168"
    assert wiebe.enumeration_date == date(2005, 5, 23)
    assert wiebe.last_update_date == date(2007, 7, 8)
    assert wiebe.latitude == pytest.approx(40.7, abs=0.1)
    assert wiebe.longitude == pytest.approx(-99.1, abs=0.1)
    assert wiebe.deactivated is False

    hospital = RegistryProvider.objects.get(npi="1497758544")
    assert hospital.entity_type == RegistryProvider.EntityType.ORGANIZATION
    assert hospital.organization_name == "CUMBERLAND COUNTY HOSPITAL SYSTEM, INC"
    assert hospital.primary_taxonomy_code == "251G00000X"


def test_a_deactivated_stub_row_marks_the_npi_deactivated(run_import: Run) -> None:
    run_import(SAMPLE)

    stub = RegistryProvider.objects.get(npi="1306849450")
    assert stub.deactivated is True
    assert stub.deactivation_date == date(2021, 3, 3)
    assert stub.entity_type is None
    assert stub.last_name == ""


def test_running_the_same_file_again_changes_nothing(run_import: Run) -> None:
    run_import(SAMPLE)
    before = list(RegistryProvider.objects.order_by("npi").values_list(*PROVIDER_COLUMNS))

    summary = run_import(SAMPLE)

    assert summary == "imported 0, updated 0, unchanged 1000, deactivated 0, rejected 0"
    assert list(RegistryProvider.objects.order_by("npi").values_list(*PROVIDER_COLUMNS)) == before


def test_a_newer_month_updates_only_what_changed(run_import: Run, tmp_path: Path) -> None:
    run_import(SAMPLE)
    header, rows = read_rows()
    address = column(header, "Provider First Line Business Practice Location Address")
    deactivation = column(header, "NPI Deactivation Date")
    # WIEBE moved; PILCHER's NPI was deactivated (a stub row); a new NPI appeared.
    rows[0][address] = "100 NEW ST"
    pilcher = rows[1][0]
    rows[1] = [""] * len(header)
    rows[1][0], rows[1][deactivation] = pilcher, "01/15/2025"
    newcomer = list(rows[0])
    newcomer[0] = make_npi(4242)
    rows.append(newcomer)
    newer = write_rows(tmp_path / "npidata_pfile_20250201-20250209.csv", header, rows)

    summary = run_import(newer)

    assert summary == "imported 1, updated 1, unchanged 998, deactivated 1, rejected 0"
    assert RegistryProvider.objects.get(npi="1679576722").address_line1 == "100 NEW ST"
    stub = RegistryProvider.objects.get(npi=pilcher)
    # The stub says only "deactivated": what we knew about the provider stays.
    assert stub.deactivated is True
    assert stub.deactivation_date == date(2025, 1, 15)
    assert stub.last_name == "PILCHER"
    assert RegistryProvider.objects.filter(npi=make_npi(4242)).exists()


def test_malformed_rows_are_rejected_with_their_line_numbers(
    run_import: Run, tmp_path: Path
) -> None:
    header, rows = read_rows()
    rows = rows[:10]
    enumeration = column(header, "Provider Enumeration Date")
    rows[2][0] = "1679576723"  # check digit off by one
    rows[4] = rows[4][:100]  # a truncated line
    rows[6][enumeration] = "2005-13-45"  # no such date
    rows[7][1] = "3"
    bad = write_rows(tmp_path / "npidata_pfile_bad.csv", header, rows)

    summary = run_import(bad)

    assert summary.startswith("imported 5, updated 0, unchanged 0, deactivated 1, rejected 4; ")
    rejects_path = Path(summary.split("reasons: ")[1])
    with rejects_path.open(newline="") as handle:
        rejects = list(csv.DictReader(handle))
    # Line 1 is the header, so data row i sits on line i + 2.
    assert [(r["line"], r["npi"]) for r in rejects] == [
        ("4", "1679576723"),
        ("6", rows[4][0]),
        ("8", rows[6][0]),
        ("9", rows[7][0]),
    ]
    assert "check digit" in rejects[0]["reason"]
    assert "expected 330 columns, found 100" in rejects[1]["reason"]
    assert "Provider Enumeration Date" in rejects[2]["reason"]
    assert "Entity Type Code" in rejects[3]["reason"]


def test_a_file_that_is_not_nppes_is_refused_before_any_write(
    run_import: Run, tmp_path: Path
) -> None:
    other = tmp_path / "partners.csv"
    other.write_text("Name,Phone\nDr Who,555\n")

    with pytest.raises(CommandError, match="not an NPPES provider file"):
        run_import(other)
    with pytest.raises(CommandError, match="not an NPPES provider file"):
        run_import(NPPES_DIR / "endpoint_pfile_header.csv")
    assert not RegistryProvider.objects.exists()


def test_an_empty_or_binary_file_is_refused(run_import: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    binary = tmp_path / "image.csv"
    binary.write_bytes(bytes(range(256)) * 10)

    with pytest.raises(CommandError, match="empty"):
        run_import(empty)
    with pytest.raises(CommandError):
        run_import(binary)


def test_a_pandas_mangled_file_loads_the_same_rows_as_the_original(run_import: Run) -> None:
    run_import(MANGLED)
    from_mangled = list(RegistryProvider.objects.order_by("npi").values_list(*PROVIDER_COLUMNS))

    summary = run_import(SAMPLE)

    assert summary == "imported 0, updated 0, unchanged 1000, deactivated 0, rejected 0"
    assert list(RegistryProvider.objects.order_by("npi").values_list(*PROVIDER_COLUMNS)) == (
        from_mangled
    )
    assert RegistryProvider.objects.get(npi="1679576722").postal_code == "688472944"


def test_an_older_file_with_the_gender_column_reads_the_sex_code(
    run_import: Run, tmp_path: Path
) -> None:
    header, rows = read_rows()
    header[column(header, "Provider Sex Code")] = "Provider Gender Code"
    older = write_rows(tmp_path / "npidata_20230101.csv", header, rows[:5])

    run_import(older)

    assert RegistryProvider.objects.get(npi="1679576722").sex == "M"


def test_state_and_taxonomy_filters_keep_only_matching_providers(run_import: Run) -> None:
    summary = run_import(SAMPLE, "--state", "NE", "--state", "ia")

    # The sample's 8 Nebraska and 8 Iowa providers; stubs carry no state, so they are kept.
    assert summary == "imported 16, updated 0, unchanged 0, deactivated 79, rejected 0"
    states = list(RegistryProvider.objects.active().values_list("state", flat=True))
    assert sorted(set(states)) == ["IA", "NE"]
    assert states.count("NE") == 8

    RegistryProvider.objects.all().delete()
    run_import(SAMPLE, "--taxonomy", "207Q")
    active = RegistryProvider.objects.active()
    assert active.count() == 64
    assert all("207Q" in p.taxonomy_codes for p in active)


def test_a_bad_state_option_is_refused(run_import: Run) -> None:
    with pytest.raises(CommandError, match="two-letter"):
        run_import(SAMPLE, "--state", "Nebraska")


def test_the_zip_bundle_loads_providers_endpoints_and_secondary_locations(
    run_import: Run, tmp_path: Path
) -> None:
    endpoint_header = (NPPES_DIR / "endpoint_pfile_header.csv").read_text().strip()
    location_header = (NPPES_DIR / "pl_pfile_header.csv").read_text().strip()
    endpoint = ["1679576722", "DIRECT", "Direct Messaging Address", "wiebe@direct.example.org"]
    endpoint += ["N", "", "", "", "", "", "", "", "", "", "", "", "", "", ""]
    location = ["1679576722", "10 SECOND ST", "", "GRAND ISLAND", "NE", "688011234", "US"]
    location += ["3085550100", "", "3085550101"]
    orphan = ["1234567893", *location[1:]]  # an NPI the bundle's main file does not have
    bundle = tmp_path / "NPPES_Data_Dissemination_February_2025.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLE, "npidata_pfile_20050523-20250209.csv")
        archive.writestr("npidata_pfile_20050523-20250209_fileheader.csv", SAMPLE.open().readline())
        archive.writestr(
            "endpoint_pfile_20050523-20250209.csv",
            endpoint_header + "\r\n" + ",".join(f'"{v}"' for v in endpoint) + "\r\n",
        )
        archive.writestr(
            "pl_pfile_20050523-20250209.csv",
            location_header
            + "\r\n"
            + "\r\n".join(",".join(f'"{v}"' for v in row) for row in (location, orphan))
            + "\r\n",
        )

    summary = run_import(bundle)
    again = run_import(bundle)

    assert summary == "imported 921, updated 0, unchanged 0, deactivated 79, rejected 0"
    assert again == "imported 0, updated 0, unchanged 1000, deactivated 0, rejected 0"
    wiebe = RegistryProvider.objects.get(npi="1679576722")
    assert list(wiebe.endpoints.values_list("endpoint_type", "endpoint")) == [
        ("DIRECT", "wiebe@direct.example.org")
    ]
    second = wiebe.secondary_locations.get()
    assert (second.city, second.zip5, second.fax) == ("GRAND ISLAND", "68801", "3085550101")
    assert second.latitude is not None
    assert RegistryEndpoint.objects.count() == 1
    assert RegistryLocation.objects.count() == 1


def test_a_zip_without_a_provider_file_is_refused(run_import: Run, tmp_path: Path) -> None:
    bundle = tmp_path / "other.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("readme.txt", "hello")

    with pytest.raises(CommandError, match="npidata_pfile"):
        run_import(bundle)


def test_a_file_named_zip_that_is_not_one_is_refused_as_such(
    run_import: Run, tmp_path: Path
) -> None:
    header, rows = read_rows()
    fake = write_rows(tmp_path / "NPPES_Data_Dissemination_November_2026.zip", header, rows[:3])

    with pytest.raises(CommandError, match="is not a zip archive"):
        run_import(fake)


def test_small_batches_give_the_same_result_as_one_batch(run_import: Run, monkeypatch) -> None:
    monkeypatch.setattr("registry.importing.nppes_write.POSTGRES_BATCH", 128)
    monkeypatch.setattr("registry.importing.nppes_write.PORTABLE_BATCH", 128)

    first = run_import(SAMPLE)
    second = run_import(SAMPLE)

    assert first == "imported 921, updated 0, unchanged 0, deactivated 79, rejected 0"
    assert second == "imported 0, updated 0, unchanged 1000, deactivated 0, rejected 0"
    assert RegistryProvider.objects.count() == 1000


def test_the_fast_npi_check_agrees_with_the_reference_check() -> None:
    from core.npi import is_valid_npi
    from registry.importing.nppes_file import _npi_ok

    candidates = [f"{n:010d}" for n in range(1234567800, 1234568000)]
    candidates += ["1679576722", "123456789", "12345678901", "12345678a3", "\uff11" * 10]
    assert [_npi_ok(c) for c in candidates] == [is_valid_npi(c) for c in candidates]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_a_transaction_the_overlapped_loader_gives_the_same_counts(
    run_import: Run, monkeypatch
) -> None:
    # Commands and workers run outside any transaction: on Postgres, parsing and merging then
    # overlap on two connections. Small batches make several hand-overs.
    monkeypatch.setattr("registry.importing.nppes_write.POSTGRES_BATCH", 100)

    first = run_import(SAMPLE)
    second = run_import(SAMPLE)

    assert first == "imported 921, updated 0, unchanged 0, deactivated 79, rejected 0"
    assert second == "imported 0, updated 0, unchanged 1000, deactivated 0, rejected 0"
    assert RegistryProvider.objects.get(npi="1679576722").last_name == "WIEBE"


def _index_names() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, RegistryProvider._meta.db_table
        )
    return {name for name, info in constraints.items() if info["index"]}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_loaders_give_the_same_rows_rejects_and_line_numbers_as_one(
    run_import: Run, tmp_path: Path, settings
) -> None:
    # A plain file split into byte ranges, each parsed and loaded by its own process: the
    # counts, the stored rows and the rejects (with their line numbers in the whole file)
    # must be those of a single reader. Bad rows sit in every part of the file.
    header, rows = read_rows()
    rows[3][0] = "1679576723"  # check digit
    rows[420] = rows[420][:50]  # truncated
    rows[777][1] = "9"  # entity type
    rows[998][column(header, "Provider Enumeration Date")] = "13/45/2005"
    bad = write_rows(tmp_path / "npidata_pfile_parts.csv", header, rows)

    def load(jobs: int) -> tuple[str, list[tuple[str, ...]], list[tuple[str, str, str]]]:
        RegistryProvider.objects.all().delete()
        summary = run_import(bad, "--jobs", str(jobs))
        stored = list(RegistryProvider.objects.order_by("npi").values_list(*PROVIDER_COLUMNS))
        with Path(summary.split("reasons: ")[1]).open(newline="") as handle:
            rejects = [(r["line"], r["npi"], r["reason"]) for r in csv.DictReader(handle)]
        return summary.split(";")[0], stored, rejects

    one = load(1)
    indexes = _index_names()
    for jobs in (2, 3):
        assert load(jobs) == one
        assert _index_names() == indexes  # every index is back after the load
    assert one[0] == "imported 918, updated 0, unchanged 0, deactivated 78, rejected 4"
    assert [line for line, _, _ in one[2]] == ["5", "422", "779", "1000"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_indexes_dropped_by_a_killed_first_load_come_back_with_the_next_import(
    run_import: Run, settings
) -> None:
    from django.db import connection

    from registry.importing import nppes_load

    before = _index_names()
    if connection.vendor == "postgresql":
        # What a first load does before it is killed: definitions saved, indexes dropped.
        nppes_load._drop_indexes_if_empty()
        assert _index_names() < before
        assert nppes_load._pending_indexes_file().exists()
    run_import(SAMPLE)
    assert _index_names() == before
    assert not nppes_load._pending_indexes_file().exists()
    # A registry that already holds rows keeps its indexes during a load.
    nppes_load._drop_indexes_if_empty()
    assert _index_names() == before


def test_a_newer_bundle_replaces_the_endpoints_and_locations_of_the_npis_it_lists(
    run_import: Run, tmp_path: Path
) -> None:
    endpoint_header = (NPPES_DIR / "endpoint_pfile_header.csv").read_text().strip()
    location_header = (NPPES_DIR / "pl_pfile_header.csv").read_text().strip()
    blank = [""] * 14

    def endpoint(npi: str, kind: str, address: str) -> list[str]:
        return [npi, kind, kind.title(), address, "N", *blank]

    def location(npi: str, street: str) -> list[str]:
        return [npi, street, "", "GRAND ISLAND", "NE", "688011234", "US", "3085550100", "", ""]

    def bundle(name: str, endpoints: list[list[str]], locations: list[list[str]]) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(SAMPLE, "npidata_pfile_20050523-20250209.csv")
            for member, header, rows in (
                ("endpoint_pfile_20050523-20250209.csv", endpoint_header, endpoints),
                ("pl_pfile_20050523-20250209.csv", location_header, locations),
            ):
                lines = [header, *(",".join(f'"{v}"' for v in row) for row in rows)]
                archive.writestr(member, "\r\n".join(lines) + "\r\n")
        return path

    wiebe = "1679576722"
    run_import(SAMPLE)
    first_other = RegistryProvider.objects.exclude(npi=wiebe).order_by("npi").first()
    assert first_other is not None
    other = first_other.npi
    january_summary = run_import(
        bundle(
            "january.zip",
            [
                endpoint(wiebe, "DIRECT", "wiebe@old-hisp.example.org"),
                endpoint(wiebe, "FHIR", "https://fhir.example.org/wiebe"),
                endpoint(other, "DIRECT", "other@direct.example.org"),
            ],
            [location(wiebe, "10 SECOND ST"), location(other, "5 THIRD ST")],
        )
    )
    assert january_summary.endswith("rejected 0")
    assert RegistryEndpoint.objects.count() == 3

    # February: Wiebe moved to a new Direct address, dropped the FHIR endpoint and his
    # second office; the other provider is not in this (weekly-style) file at all.
    run_import(
        bundle(
            "february.zip",
            [endpoint(wiebe, "DIRECT", "wiebe@new-hisp.example.org")],
            [location(wiebe, "99 NEW RD")],
        )
    )

    doctor = RegistryProvider.objects.get(npi=wiebe)
    assert list(doctor.endpoints.values_list("endpoint", flat=True)) == [
        "wiebe@new-hisp.example.org"
    ]
    assert list(doctor.secondary_locations.values_list("address_line1", flat=True)) == ["99 NEW RD"]
    assert list(
        RegistryEndpoint.objects.filter(provider__npi=other).values_list("endpoint", flat=True)
    ) == ["other@direct.example.org"]
    assert RegistryLocation.objects.filter(provider__npi=other).count() == 1


def test_a_row_with_bytes_that_are_not_utf8_is_rejected_naming_the_column(
    run_import: Run, tmp_path: Path
) -> None:
    header, rows = read_rows()
    rows = rows[:10]
    city = column(header, "Provider Business Practice Location Address City Name")
    garbled = next(i for i, row in enumerate(rows) if row[1] == "1")
    rows[garbled][city] = "MARKER-CITY"
    path = write_rows(tmp_path / "npidata_pfile_latin1.csv", header, rows)
    # The city as a Latin-1 export writes it: one byte for the accented letter.
    path.write_bytes(path.read_bytes().replace(b"MARKER-CITY", "MONTRÉAL".encode("latin-1")))

    summary = run_import(path)

    assert "rejected 1; " in summary
    with Path(summary.split("reasons: ")[1]).open(newline="") as handle:
        [reject] = list(csv.DictReader(handle))
    assert reject["npi"] == rows[garbled][0]
    assert "City Name has bytes that are not UTF-8 text" in reject["reason"]
    assert not RegistryProvider.objects.filter(city__contains="\ufffd").exists()


def test_a_row_with_a_nul_byte_is_rejected_naming_the_column_and_the_rest_loads(
    run_import: Run, tmp_path: Path
) -> None:
    header, rows = read_rows()
    rows = rows[:10]
    individuals = [i for i, row in enumerate(rows) if row[1] == "1"]
    city = column(header, "Provider Business Practice Location Address City Name")
    phone = column(header, "Provider Business Practice Location Address Telephone Number")
    taxonomy = column(header, "Healthcare Provider Taxonomy Code_1")
    # A stray NUL from a damaged copy: Postgres text cannot hold one.
    rows[individuals[0]][city] = "KEAR\x00NEY"
    rows[individuals[1]][phone] = "308865\x002512"
    rows[individuals[2]][taxonomy] = "207X\x00000X"
    path = write_rows(tmp_path / "npidata_pfile_nul.csv", header, rows)

    summary = run_import(path)

    assert summary.startswith("imported 6, updated 0, unchanged 0, deactivated 1, rejected 3; ")
    with Path(summary.split("reasons: ")[1]).open(newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert [r["npi"] for r in rejects] == [rows[i][0] for i in individuals[:3]]
    assert "City Name has a NUL byte" in rejects[0]["reason"]
    assert "Telephone Number has a NUL byte" in rejects[1]["reason"]
    assert "Taxonomy Code_1 has a NUL byte" in rejects[2]["reason"]


def test_a_companion_row_with_a_nul_byte_is_rejected_and_the_rest_loads(
    run_import: Run, tmp_path: Path
) -> None:
    endpoint_header = (NPPES_DIR / "endpoint_pfile_header.csv").read_text().strip()
    location_header = (NPPES_DIR / "pl_pfile_header.csv").read_text().strip()
    blank = [""] * 14
    good = ["1679576722", "DIRECT", "Direct Messaging Address", "wiebe@direct.example.org", "N"]
    bad = ["1679576722", "DIRECT", "Direct Messaging Address", "wiebe@dir\x00ect.example.org", "N"]
    location = ["1679576722", "10 SECOND\x00 ST", "", "GRAND ISLAND", "NE", "688011234", "US"]
    location += ["3085550100", "", "3085550101"]
    bundle = tmp_path / "NPPES_Data_Dissemination_February_2025.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLE, "npidata_pfile_20050523-20250209.csv")
        archive.writestr(
            "endpoint_pfile_20050523-20250209.csv",
            endpoint_header
            + "\r\n"
            + "\r\n".join(",".join(f'"{v}"' for v in [*row, *blank]) for row in (good, bad))
            + "\r\n",
        )
        archive.writestr(
            "pl_pfile_20050523-20250209.csv",
            location_header + "\r\n" + ",".join(f'"{v}"' for v in location) + "\r\n",
        )

    summary = run_import(bundle)

    assert summary.startswith("imported 921, updated 0, unchanged 0, deactivated 79, rejected 2; ")
    with Path(summary.split("reasons: ")[1]).open(newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["file"], r["line"]) for r in rejects] == [("endpoint", "3"), ("pl", "2")]
    assert all("NUL byte" in r["reason"] for r in rejects)
    assert list(RegistryEndpoint.objects.values_list("endpoint", flat=True)) == [
        "wiebe@direct.example.org"
    ]
    assert not RegistryLocation.objects.exists()


def test_a_damaged_zip_is_refused_with_the_reason(run_import: Run, tmp_path: Path) -> None:
    bundle = tmp_path / "NPPES_Data_Dissemination_February_2025.zip"
    bundle.write_bytes(damaged_bundle())

    with pytest.raises(CommandError, match="damaged"):
        run_import(bundle)
