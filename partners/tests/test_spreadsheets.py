import csv
import io
import zipfile
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from core.csv_cells import safe_cell
from partners.factories import OrganizationFactory, ProviderFactory, make_npi
from partners.models import Organization, PartnerImport, Provider
from partners.services.imports import SYNC_IMPORT_ROWS, partner_import_apply
from partners.spreadsheets.columns import guess_mapping
from partners.spreadsheets.planning import plan_import
from partners.spreadsheets.reading import MAX_COLUMNS, UnreadableFile, read_table
from partners.tasks import sweep_partner_imports

pytestmark = pytest.mark.django_db

GOOD_NPI, OTHER_NPI, KNOWN_NPI = make_npi(7001), make_npi(7002), make_npi(7003)
BAD_CHECK_DIGIT = GOOD_NPI[:9] + str((int(GOOD_NPI[9]) + 1) % 10)


def _csv(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _upload(client, content, name="partners.csv"):
    return client.post(
        reverse("partners:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )


SHEET = [
    ["NPI", "First Name", "Last Name", "Practice", "Phone", "Favourite colour"],
    [GOOD_NPI, "Ana", "Reyes", "Kearney Family Practice", "(308) 555-0101", "blue"],
    [BAD_CHECK_DIGIT, "Bo", "Lund", "Kearney Family Practice", "", ""],
    [OTHER_NPI, "", "Nameless", "", "", ""],
    [KNOWN_NPI, "David", "Wiebe", "Hastings Clinic", "(402) 555-0199", ""],
    [GOOD_NPI, "Ana", "Reyes again", "", "", ""],
]


def test_headers_from_other_crms_are_guessed():
    assert guess_mapping(["NPI", "First Name", "Last Name", "Practice", "Phone", "Colour"]) == {
        "0": "npi",
        "1": "first_name",
        "2": "last_name",
        "3": "organization",
        "4": "phone",
    }
    assert guess_mapping(["Provider Name", "npi_number", "E-mail Address"]) == {
        "0": "full_name",
        "1": "npi",
        "2": "email",
    }


def test_a_csv_import_maps_previews_and_applies_only_when_confirmed(
    client_for, manager, confirm_import
):
    known = ProviderFactory(npi=KNOWN_NPI, first_name="David", last_name="Wiebe", phone="")
    OrganizationFactory(name="Hastings clinic")  # matched without regard to case
    client = client_for(manager)

    response = _upload(client, _csv(SHEET))
    partner_import = PartnerImport.objects.get()
    assert response.url == reverse("partners:import_mapping", args=[partner_import.pk])
    mapping_page = client.get(response.url).content.decode()
    assert "e.g. Kearney Family Practice" in mapping_page
    response = client.post(
        response.url,
        {
            "column_0": "npi",
            "column_1": "first_name",
            "column_2": "last_name",
            "column_3": "organization",
            "column_4": "phone",
            "column_5": "",
        },
    )
    assert response.url == partner_import.get_absolute_url()

    preview = client.get(response.url).content.decode()
    assert "check digit is wrong" in preview
    assert "No first name." in preview
    assert f"NPI {GOOD_NPI} is also on row 2." in preview
    assert "Phone: (empty) → <strong>(402) 555-0199</strong>" in preview
    assert "New offices (1): Kearney Family Practice" in preview
    assert Provider.objects.count() == 1  # the preview wrote nothing

    response = confirm_import(client, partner_import)
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.APPLIED
    assert partner_import.result == {
        "create": 1,
        "update": 1,
        "unchanged": 0,
        "reject": 3,
        "organizations": 1,
        "offices_updated": 0,
    }
    created = Provider.objects.get(npi=GOOD_NPI)
    assert created.organization.name == "Kearney Family Practice"
    assert created.status == Provider.Status.PROSPECT
    known.refresh_from_db()
    assert known.phone == "(402) 555-0199"
    assert known.organization.name == "Hastings clinic"
    assert Organization.objects.count() == 3  # known's factory office, Hastings, Kearney

    rejects = client.get(reverse("partners:import_rejects", args=[partner_import.pk]))
    body = b"".join(rejects.streaming_content)
    assert body.startswith("\ufeff".encode())  # so Excel reads it as UTF-8
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert lines[0] == ["Row", *SHEET[0], "Reasons"]
    assert [line[0] for line in lines[1:]] == ["3", "4", "6"]

    # A second confirmation (double-click, back button) is refused, nothing doubles.
    again = confirm_import(client, partner_import, follow=True)
    assert "already confirmed" in again.content.decode()
    assert Provider.objects.count() == 2


def test_a_mapping_without_npi_or_names_is_refused_with_reasons(client_for, manager):
    client = client_for(manager)
    _upload(client, _csv(SHEET))
    partner_import = PartnerImport.objects.get()
    page = client.post(
        reverse("partners:import_mapping", args=[partner_import.pk]),
        {"column_1": "first_name", "column_2": "first_name"},
    ).content.decode()
    assert "Choose the column that holds the NPI" in page
    assert "chosen twice" in page


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("partners.pdf", b"%PDF-1.4", "Upload a .csv or .xlsx file."),
        ("partners.xlsx", b"not a zip", "not a readable .xlsx"),
        ("partners.csv", b"", "The submitted file is empty."),
        ("partners.csv", b"\n\n", "The file is empty."),
        ("partners.csv", b"NPI,First name\n", "no partners under it"),
    ],
)
def test_a_bad_file_re_renders_the_upload_form_with_the_reason(
    client_for, manager, name, content, message
):
    response = _upload(client_for(manager), content, name)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PartnerImport.objects.exists()


def test_an_export_round_trips_through_xlsx_import(client_for, manager, confirm_import):
    ProviderFactory(npi=GOOD_NPI, last_name="Reyes", notes='=HYPERLINK("x")')
    client = client_for(manager)
    response = client.get(reverse("partners:provider_export"), {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("NPI", "First name", "Last name")
    assert rows[1][0] == GOOD_NPI
    notes = rows[0].index("Notes")
    assert rows[1][notes] == '\'=HYPERLINK("x")'  # a formula is never handed to Excel
    Provider.objects.all().delete()

    _upload(client, response.content, "partners.xlsx")
    partner_import = PartnerImport.objects.get()
    assert set(partner_import.mapping.values()) >= {"npi", "first_name", "last_name", "phone"}
    confirm_import(client, partner_import)
    assert Provider.objects.get(npi=GOOD_NPI).last_name == "Reyes"


def test_an_xlsx_with_numeric_npis_and_full_names_is_read(client_for, manager, confirm_import):
    workbook = Workbook()
    workbook.active.append(["Provider Name", "NPI Number", "Specialty"])
    workbook.active.append(["Jane Q. Doe, MD", int(GOOD_NPI), "Cardiology"])
    workbook.active.append(["Lund, Bo", float(OTHER_NPI), ""])
    buffer = io.BytesIO()
    workbook.save(buffer)
    client = client_for(manager)
    _upload(client, buffer.getvalue(), "sheet.xlsx")
    partner_import = PartnerImport.objects.get()
    confirm_import(client, partner_import)
    jane = Provider.objects.get(npi=GOOD_NPI)
    assert (jane.first_name, jane.last_name, jane.credential) == ("Jane Q.", "Doe", "MD")
    bo = Provider.objects.get(npi=OTHER_NPI)
    assert (bo.first_name, bo.last_name) == ("Bo", "Lund")


def test_the_csv_export_streams_the_filtered_list(client_for, manager):
    ProviderFactory(last_name="Wiebe", tier="A")
    ProviderFactory(last_name="Pilcher", tier="C")
    response = client_for(manager).get(reverse("partners:provider_export"), {"tier": "A"})
    body = b"".join(response.streaming_content).decode()
    assert "Wiebe" in body and "Pilcher" not in body


def test_a_csv_export_with_accented_names_imports_back_unchanged(client_for, manager):
    office = OrganizationFactory(name="Clínica Peña", city="Española")
    ProviderFactory(npi=GOOD_NPI, first_name="José", last_name="Muñoz", organization=office)
    client = client_for(manager)
    export = b"".join(client.get(reverse("partners:provider_export")).streaming_content)
    assert export.startswith("\ufeff".encode())

    _upload(client, export, "partners.csv")
    partner_import = PartnerImport.objects.get()
    # The mark is not read into the first header, which would then map to nothing.
    assert partner_import.headers[0] == "NPI"
    assert partner_import.mapping["0"] == "npi"
    preview = client.get(partner_import.get_absolute_url())
    assert preview.context["counts"]["unchanged"] == 1
    assert preview.context["counts"]["update"] == preview.context["counts"]["create"] == 0
    assert "→" not in preview.content.decode()


def test_only_managers_import_and_export(client_for, liaison, coordinator):
    for user in (liaison, coordinator):
        client = client_for(user)
        assert client.get(reverse("partners:provider_export")).status_code == 403
        assert _upload(client, _csv(SHEET)).status_code == 403
    assert not PartnerImport.objects.exists()


def test_a_big_import_is_queued_for_a_worker_and_reports_progress(
    client_for, manager, django_capture_on_commit_callbacks, confirm_import
):
    rows = [["NPI", "First name", "Last name"]]
    rows += [[make_npi(10_000 + n), "Pat", f"Number{n}"] for n in range(SYNC_IMPORT_ROWS + 1)]
    client = client_for(manager)
    _upload(client, _csv(rows))
    partner_import = PartnerImport.objects.get()
    with django_capture_on_commit_callbacks() as callbacks:
        confirm_import(client, partner_import)
    assert len(callbacks) == 1
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.QUEUED
    page = client.get(partner_import.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in page and "<progress" in page
    assert "X-Progress-Poll" in page  # no activity for idle logoff

    done = partner_import_apply(import_id=partner_import.pk)
    assert done.status == PartnerImport.Status.APPLIED
    assert done.processed_rows == SYNC_IMPORT_ROWS + 1
    assert Provider.objects.count() == SYNC_IMPORT_ROWS + 1
    # The task re-delivered later does nothing.
    assert partner_import_apply(import_id=partner_import.pk) is None


def test_the_sweep_re_drives_an_import_whose_worker_died(django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    stuck = PartnerImport.objects.create(
        file_name="x.csv",
        headers=["NPI", "First name", "Last name"],
        rows=[[GOOD_NPI, "Ana", "Reyes"]],
        mapping={"0": "npi", "1": "first_name", "2": "last_name"},
        status=PartnerImport.Status.APPLYING,
        claimed_at=timezone.now() - timedelta(hours=1),
    )
    sweep_partner_imports.apply()  # eager: the queued apply runs in process
    stuck.refresh_from_db()
    assert stuck.status in (PartnerImport.Status.QUEUED, PartnerImport.Status.APPLIED)
    partner_import_apply(import_id=stuck.pk)
    stuck.refresh_from_db()
    assert stuck.status == PartnerImport.Status.APPLIED
    assert Provider.objects.filter(npi=GOOD_NPI).exists()


def test_an_import_that_loses_its_worker_every_time_is_given_up_with_the_reason(
    client_for, manager
):
    """A file that kills its worker (memory) is not re-run for ever by the sweep."""
    from datetime import timedelta

    from django.utils import timezone

    from partners.services.imports import IMPORT_MAX_ATTEMPTS, partner_imports_to_redrive

    stuck = PartnerImport.objects.create(
        file_name="x.csv",
        headers=["NPI", "First name", "Last name"],
        rows=[[GOOD_NPI, "Ana", "Reyes"]],
        mapping={"0": "npi", "1": "first_name", "2": "last_name"},
        status=PartnerImport.Status.QUEUED,
        uploaded_by=manager,
        claimed_at=timezone.now(),
    )
    died = timezone.now() - timedelta(hours=1)
    for attempt in range(1, IMPORT_MAX_ATTEMPTS + 1):
        # A worker claims it and dies before writing anything.
        PartnerImport.objects.filter(pk=stuck.pk).update(
            status=PartnerImport.Status.APPLYING, attempts=attempt, claimed_at=died
        )
        redriven = partner_imports_to_redrive()
        stuck.refresh_from_db()
        if attempt < IMPORT_MAX_ATTEMPTS:
            assert redriven == [stuck.pk] and stuck.status == PartnerImport.Status.QUEUED
    assert redriven == []
    assert stuck.status == PartnerImport.Status.FAILED and stuck.finished_at is not None
    assert f"stopped {IMPORT_MAX_ATTEMPTS} times" in stuck.error
    page = client_for(manager).get(reverse("partners:import_detail", args=[stuck.pk]))
    assert f"stopped {IMPORT_MAX_ATTEMPTS} times" in page.content.decode()
    assert not Provider.objects.filter(npi=GOOD_NPI).exists()


def test_an_import_still_checking_its_rows_is_not_taken_for_a_lost_one(monkeypatch):
    """Progress is its sign of life: checking a big file for longer than the sweep's
    patience must not hand it to a second worker."""
    from datetime import timedelta

    from django.utils import timezone

    from partners.services import imports
    from partners.spreadsheets import planning

    long_ago = timezone.now() - timedelta(hours=1)
    running = PartnerImport.objects.create(
        file_name="x.csv",
        headers=["NPI", "First name", "Last name"],
        rows=[[GOOD_NPI, "Ana", "Reyes"]],
        mapping={"0": "npi", "1": "first_name", "2": "last_name"},
        status=PartnerImport.Status.QUEUED,
        claimed_at=long_ago,
    )
    seen: list[list[int]] = []
    real_plan = planning.plan_import

    def slow_plan(rows, mapping, *, numbers, progress):
        # An hour into checking the rows, one more is checked.
        PartnerImport.objects.filter(pk=running.pk).update(claimed_at=long_ago)
        progress(1)
        seen.append(imports.partner_imports_to_redrive())
        return real_plan(rows, mapping, numbers=numbers, progress=progress)

    monkeypatch.setattr(planning, "plan_import", slow_plan)
    partner_import_apply(import_id=running.pk)
    assert seen == [[]]
    running.refresh_from_db()
    assert running.status == PartnerImport.Status.APPLIED and running.attempts == 1


def test_read_table_pads_short_rows_and_names_blank_headers():
    table = read_table(io.BytesIO(b"NPI;;Name\n1;2\n"), "x.csv")
    assert table.headers == ["NPI", "Column 2", "Name"]
    assert table.rows == [["1", "2", ""]]


def test_a_binary_file_named_csv_is_refused_with_a_reason():
    # 0x81 is undefined in cp1252 and a lone continuation byte in UTF-8: text in neither.
    with pytest.raises(UnreadableFile, match="does not look like a text CSV"):
        read_table(io.BytesIO(b"\x81\x8d\x8f\x90\x9d" * 100), "photo.csv")


def test_read_table_takes_invisible_direction_controls_out_of_cells():
    sheet = "NPI,Last name\n1679576722,\u202eebeiW\u200b\n".encode()
    assert read_table(io.BytesIO(sheet), "x.csv").rows == [["1679576722", "ebeiW"]]


def test_hostile_mapping_values_are_refused_without_a_server_error(client_for, manager):
    client = client_for(manager)
    _upload(client, _csv(SHEET))
    partner_import = PartnerImport.objects.get()
    url = reverse("partners:import_mapping", args=[partner_import.pk])
    for value in ("<script>", "npi' OR 1=1", "x" * 5000, "\x00"):
        response = client.post(url, {"column_0": value, "column_1": "npi", "column_9": "npi"})
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    partner_import.refresh_from_db()
    assert partner_import.mapping == guess_mapping(SHEET[0])


def test_someone_without_the_import_permission_cannot_see_an_import(client_for, liaison, manager):
    _upload(client_for(manager), _csv(SHEET))
    partner_import = PartnerImport.objects.get()
    client = client_for(liaison)
    for name in ("import_detail", "import_mapping", "import_rejects"):
        assert client.get(reverse(f"partners:{name}", args=[partner_import.pk])).status_code == 403


def test_a_column_mapping_problem_is_said_once(client_for, manager):
    partner_import = PartnerImport.objects.create(
        file_name="partners.csv",
        headers=["NPI", "Name", "Phone", "Fax"],
        rows=[["1679576722", "Ann Lee", "402", "403"]],
        mapping={},
        uploaded_by=manager,
    )
    response = client_for(manager).post(
        reverse("partners:import_mapping", args=[partner_import.pk]),
        {"column_0": "npi", "column_1": "full_name", "column_2": "phone", "column_3": "phone"},
    )
    page = response.content.decode()
    assert page.count("is chosen twice") == 1
    assert "Please correct the fields marked below" not in page


def test_a_csv_with_old_mac_line_endings_is_read():
    # Excel for Mac's "CSV (Macintosh)" ends each line with a bare carriage return.
    sheet = b'NPI,Last name,Notes\r1679576722,Reyes,"two\rlines"\r1245319599,Lund,\r'
    table = read_table(io.BytesIO(sheet), "x.csv")
    assert table.headers == ["NPI", "Last name", "Notes"]
    assert table.rows == [["1679576722", "Reyes", "two\rlines"], ["1245319599", "Lund", ""]]


def test_a_file_too_wide_to_map_is_refused_at_upload(client_for, manager):
    # One choice per column on the mapping page: 20,000 of them never finished drawing.
    wide = ",".join(f"c{i}" for i in range(20_000)) + "\n" + "x," * 19_999 + "x\n"
    response = _upload(client_for(manager), wide.encode())
    assert response.status_code == 200
    assert "more than 900 columns" in response.content.decode()
    assert not PartnerImport.objects.exists()


def test_blank_cells_past_the_last_filled_column_do_not_count_as_columns():
    sheet = b"NPI,Last name" + b"," * 5000 + b"\n1679576722,Reyes" + b"," * 5000 + b"\n"
    table = read_table(io.BytesIO(sheet), "x.csv")
    assert table.headers == ["NPI", "Last name"]
    assert table.rows == [["1679576722", "Reyes"]]


def test_the_apostrophe_an_export_puts_before_a_formula_like_cell_is_taken_off_on_import():
    notes = ["- prefers fax", "=1+1", "@home visits", "+1 402 555 0101"]
    sheet = _csv([["NPI", "Notes"], *(["1679576722", safe_cell(note)] for note in notes)])
    assert [row[1] for row in read_table(io.BytesIO(sheet), "x.csv").rows] == notes
    # An apostrophe before anything else is the partner's own.
    sheet = _csv([["NPI", "Last name"], ["1679576722", "'t Hooft"]])
    assert read_table(io.BytesIO(sheet), "x.csv").rows == [["1679576722", "'t Hooft"]]


def test_a_row_naming_only_an_organization_is_said_to_be_an_office():
    from partners.spreadsheets.rows import _problems

    office_row = {"npi": GOOD_NPI, "organization": "MAPLE FAMILY PRACTICE LLC"}
    assert _problems(office_row) == [
        "No first or last name: a row naming only an organization is an office, not a "
        "clinician. Offices come in with the clinicians who work there."
    ]
    assert _problems({"npi": GOOD_NPI, "last_name": "Reyes"}) == ["No first name."]


def test_rows_are_numbered_as_in_the_spreadsheet_past_blank_rows(client_for, manager):
    # A sheet whose header sits under two empty rows and whose partners are split by a
    # blank spacer row: the manager looks for the bad row by the number shown.
    workbook = Workbook()
    sheet = workbook.active
    sheet.append([])
    sheet.append([])
    sheet.append(["NPI", "First name", "Last name"])  # row 3
    sheet.append([GOOD_NPI, "Ana", "Reyes"])  # row 4
    sheet.append([])  # row 5
    sheet.append([BAD_CHECK_DIGIT, "Bo", "Lund"])  # row 6
    sheet.append([GOOD_NPI, "Ana", "Reyes"])  # row 7
    content = io.BytesIO()
    workbook.save(content)
    client = client_for(manager)
    _upload(client, content.getvalue(), "partners.xlsx")
    partner_import = PartnerImport.objects.get()
    assert partner_import.total_rows == 3

    page = client.get(partner_import.get_absolute_url()).content.decode()
    assert "<td>6</td>" in page
    assert "is also on row 4." in page
    rejects = client.get(reverse("partners:import_rejects", args=[partner_import.pk]))
    lines = list(csv.reader(io.StringIO(b"".join(rejects.streaming_content).decode("utf-8-sig"))))
    assert [line[0] for line in lines[1:]] == ["6", "7"]


def test_a_big_import_confirmed_while_the_broker_is_down_is_saved_for_the_sweep(
    client_for, manager, django_capture_on_commit_callbacks, monkeypatch, confirm_import
):
    from kombu.exceptions import OperationalError

    from partners.tasks import apply_partner_import

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(apply_partner_import, "apply_async", broker_down)
    rows = [["NPI", "First name", "Last name"]]
    rows += [[make_npi(10_000 + n), "Pat", f"Number{n}"] for n in range(SYNC_IMPORT_ROWS + 1)]
    client = client_for(manager)
    _upload(client, _csv(rows))
    partner_import = PartnerImport.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm_import(client, partner_import)

    # The confirmation is committed: the page answers, and the sweep hands it to a worker.
    assert response.status_code == 302
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.QUEUED


def test_a_taxonomy_code_the_partner_form_would_refuse_is_left_out_of_the_import_saying_why():
    """As the partner form checks it: the NUCC shape, and the NUCC list once it is
    loaded. The partner still imports, without the code, and the preview says so."""
    from partners.spreadsheets.planning import plan_import
    from registry.models import Taxonomy

    Taxonomy.objects.get_or_create(
        code="207X00000X",
        defaults={"grouping": "Allopathic", "classification": "Orthopaedic Surgery"},
    )
    mapping = {"0": "npi", "1": "first_name", "2": "last_name", "3": "taxonomy_code"}
    plan = plan_import(
        [
            [make_npi(1), "Ann", "Lee", " 207x00000x "],
            [make_npi(2), "Bo", "Ng", "207Z99999X"],
            [make_npi(3), "Cy", "Oh", "Ortho"],
        ],
        mapping,
    )
    known, unlisted, garbled = plan.rows
    assert [row.action for row in plan.rows] == ["create", "create", "create"]
    assert known.values["taxonomy_code"] == "207X00000X" and known.skipped == []
    assert "taxonomy_code" not in unlisted.values
    assert unlisted.skipped == [
        "Taxonomy code “207Z99999X” left out: it is not in the NUCC taxonomy list."
    ]
    assert "taxonomy_code" not in garbled.values
    assert garbled.skipped == [
        "Taxonomy code “Ortho” left out: a NUCC taxonomy code is 10 characters: 3 digits, "
        "6 digits or letters, and X (e.g. 207Q00000X)."
    ]


def test_an_opt_out_of_newsletters_round_trips_and_never_opts_anyone_back_in(
    client_for, manager, confirm_import
):
    """Exported, it imports back; from another CRM, a "no newsletters" column reads the
    same; as with letters, a "no" never opts a partner back in."""
    from partners.spreadsheets.columns import guess_mapping
    from partners.spreadsheets.export import export_rows
    from partners.spreadsheets.planning import plan_import

    ProviderFactory(npi=GOOD_NPI, last_name="Reyes", marketing_opt_out=True)
    header, row = list(export_rows(Provider.objects.all()))
    column = header.index("Opted out of newsletters and invitations")
    assert row[column] == "yes"
    mapping = guess_mapping(header)
    assert mapping[str(column)] == "marketing_opt_out"
    assert guess_mapping(["NPI", "No newsletters"]) == {"0": "npi", "1": "marketing_opt_out"}

    Provider.objects.all().delete()
    client = client_for(manager)
    _upload(client, _csv([header, row]))
    partner_import = PartnerImport.objects.get()
    confirm_import(client, partner_import)
    assert Provider.objects.get(npi=GOOD_NPI).marketing_opt_out

    names = ["NPI", "First name", "Last name", "No newsletters"]
    imported = Provider.objects.get(npi=GOOD_NPI)
    plan = plan_import(
        [[GOOD_NPI, imported.first_name, imported.last_name, "no"]], guess_mapping(names)
    )
    (kept,) = plan.rows
    assert kept.action == "unchanged" and kept.skipped == [
        "Opted out of newsletters and invitations (yes / no) “no” left out: they opted out "
        "here, and only their own page opts them back in."
    ]
    refused = plan_import([[OTHER_NPI, "Bo", "Lund", "perhaps"]], guess_mapping(names))
    assert refused.rows[0].reasons == [
        "Opted out of newsletters and invitations (yes / no) “perhaps” is neither yes nor no."
    ]


def test_excels_unicode_text_file_is_read():
    # Excel's "Unicode Text (*.txt)": UTF-16 with a byte-order mark, tab-delimited.
    sheet = "\ufeffNPI\tFirst name\tLast name\r\n1679576722\tJosé\tNuñez\r\n"
    for encoding in ("utf-16-le", "utf-16-be"):
        table = read_table(io.BytesIO(sheet.encode(encoding)), "partners.txt")
        assert table.headers == ["NPI", "First name", "Last name"]
        assert table.rows == [["1679576722", "José", "Nuñez"]]


def test_an_xlsx_export_of_notes_on_several_lines_imports_back_unchanged(client_for, manager):
    # A browser sends a textarea's lines ending in \r\n, and the partner form keeps them;
    # a workbook stores line feeds only.
    ProviderFactory(npi=GOOD_NPI, notes="Called twice.\r\nLunch in May.")
    client = client_for(manager)
    export = client.get(reverse("partners:provider_export"), {"format": "xlsx"})
    _upload(client, export.content, "partners.xlsx")
    partner_import = PartnerImport.objects.get()

    preview = client.get(partner_import.get_absolute_url())
    assert preview.context["counts"] == {"create": 0, "update": 0, "unchanged": 1, "reject": 0}


def test_the_mapping_of_the_widest_file_the_upload_takes_can_be_saved(client_for, manager):
    # The mapping page posts one choice per column: all must fit in one request.
    width = MAX_COLUMNS
    headers = ["NPI", "First name", "Last name", *(f"Extra {n}" for n in range(width - 3))]
    row = [GOOD_NPI, "Ana", "Reyes", *("x" for _ in range(width - 3))]
    client = client_for(manager)
    response = _upload(client, _csv([headers, row]))
    partner_import = PartnerImport.objects.get()
    choices = {f"column_{index}": "" for index in range(width)}
    choices.update(column_0="npi", column_1="first_name", column_2="last_name")
    # As the browser posts the page: with the owner choice and the CSRF token.
    form = {"csrfmiddlewaretoken": "x" * 64, "new_owner": "", **choices}

    response = client.post(
        response.url, urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 302
    partner_import.refresh_from_db()
    assert partner_import.mapping == {"0": "npi", "1": "first_name", "2": "last_name"}


def test_a_workbook_whose_first_sheet_is_empty_says_the_first_sheet_is_read(client_for, manager):
    workbook = Workbook()
    workbook.active.title = "Read me"
    workbook.create_sheet("Partners").append(["NPI", "First name", "Last name"])
    workbook["Partners"].append([GOOD_NPI, "Ana", "Reyes"])
    buffer = io.BytesIO()
    workbook.save(buffer)

    response = _upload(client_for(manager), buffer.getvalue(), "partners.xlsx")
    page = response.content.decode()
    assert "The first sheet, “Read me”, is empty" in page
    assert "The file is empty" not in page


def _workbook_with(part, content):
    """A workbook whose `part` (a file inside the .xlsx zip) is replaced by `content`."""
    workbook = Workbook()
    workbook.active.append(["NPI", "First name", "Last name"])
    workbook.active.append([GOOD_NPI, "Ana", "Reyes"])
    saved = io.BytesIO()
    workbook.save(saved)
    damaged = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            target.writestr(item, content if item.filename == part else source.read(item))
    return damaged.getvalue()


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml", "xl/styles.xml"])
def test_a_damaged_workbook_is_refused_with_a_reason(client_for, manager, part):
    content = _workbook_with(part, b"<worksheet><sheetData><row><c")
    response = _upload(client_for(manager), content, "partners.xlsx")
    assert response.status_code == 200
    assert "not a readable .xlsx" in response.content.decode()
    assert not PartnerImport.objects.exists()


def test_once_every_row_is_checked_the_progress_says_the_partners_are_being_written(
    client_for, manager, monkeypatch
):
    from partners.services import imports

    rows = [["NPI", "First name", "Last name"]]
    rows += [[make_npi(10_000 + n), "Pat", f"Number{n}"] for n in range(1500)]
    client = client_for(manager)
    _upload(client, _csv(rows))
    partner_import = PartnerImport.objects.get()
    PartnerImport.objects.filter(pk=partner_import.pk).update(
        status=PartnerImport.Status.QUEUED, total_rows=1500
    )
    pages = []
    write = imports._write_import

    def write_and_look(*args, **kwargs):
        # What the page polled while the worker writes shows.
        pages.append(client.get(partner_import.get_absolute_url(), HTTP_HX_REQUEST="true"))
        write(*args, **kwargs)

    monkeypatch.setattr(imports, "_write_import", write_and_look)
    partner_import_apply(import_id=partner_import.pk)

    page = pages[0].content.decode()
    assert "Writing the partners in one transaction" in page
    assert "Checking rows" not in page


def test_an_organizations_npi_is_refused_as_the_partner_form_refuses_it(
    client_for, manager, confirm_import
):
    from registry.factories import RegistryProviderFactory
    from registry.models import RegistryProvider

    office_npi = make_npi(7004, entity_type=2)
    RegistryProviderFactory(
        npi=office_npi,
        entity_type=RegistryProvider.EntityType.ORGANIZATION,
        first_name="",
        last_name="",
        organization_name="KEARNEY FAMILY PRACTICE PC",
    )
    sheet = [
        ["NPI", "First name", "Last name", "Practice"],
        [office_npi, "Mary", "Front-Desk", "Kearney Family Practice"],
        [GOOD_NPI, "Ana", "Reyes", "Kearney Family Practice"],
    ]
    client = client_for(manager)
    _upload(client, _csv(sheet))
    partner_import = PartnerImport.objects.get()

    preview = client.get(partner_import.get_absolute_url())
    (refused,) = preview.context["rejects"]
    assert refused.number == 2
    assert refused.reasons == [
        f"NPI {office_npi} is an organization's in the NPPES registry (KEARNEY FAMILY "
        "PRACTICE PC): a partner here is a clinician, with their own NPI."
    ]
    confirm_import(client, partner_import)
    assert list(Provider.objects.values_list("npi", flat=True)) == [GOOD_NPI]


def test_excel_for_macs_csv_keeps_accented_names():
    # "CSV (Macintosh)": lines end in a bare carriage return, text is in Mac Roman.
    sheet = "NPI,First name,Last name\r1679576722,José,Nuñez\r".encode("mac_roman")
    table = read_table(io.BytesIO(sheet), "partners.csv")
    assert table.rows == [["1679576722", "José", "Nuñez"]]


def test_an_npi_written_as_a_decimal_number_is_read_as_the_npi():
    # A CSV written by pandas or a database tool from a number column: "1679576722.0".
    sheet = [["NPI", "First name", "Last name"], [f"{GOOD_NPI}.0", "Ana", "Reyes"]]
    headers, *rows = sheet
    plan = plan_import(rows, guess_mapping(headers))
    (row,) = plan.of("create")
    assert row.values["npi"] == GOOD_NPI


def test_every_column_keeps_a_name_of_its_own():
    # Two "Phone" columns and one already called "Phone (2)": the mapping page tells all apart.
    table = read_table(io.BytesIO(b"NPI,Phone,Phone,Phone (2)\n1,a,b,c\n"), "x.csv")
    assert len(set(table.headers)) == 4
    assert table.headers[:2] == ["NPI", "Phone"]


def test_a_partners_own_taxonomy_code_sent_back_unchanged_is_not_said_to_be_left_out():
    """As on the partner form: a code stored before NUCC retired it, or before the list was
    loaded, is not checked again when it comes back as it is (an export read back)."""
    from registry.models import Taxonomy

    Taxonomy.objects.get_or_create(
        code="207X00000X",
        defaults={"grouping": "Allopathic", "classification": "Orthopaedic Surgery"},
    )
    ProviderFactory(npi=GOOD_NPI, first_name="Ann", last_name="Lee", taxonomy_code="207Z99999X")
    mapping = {"0": "npi", "1": "first_name", "2": "last_name", "3": "taxonomy_code"}
    plan = plan_import(
        [[GOOD_NPI, "Ann", "Lee", "207Z99999X"], [OTHER_NPI, "Bo", "Ng", "207Z99999X"]],
        mapping,
    )
    kept, new = plan.rows
    assert (kept.action, kept.skipped) == ("unchanged", [])
    assert new.skipped == [
        "Taxonomy code “207Z99999X” left out: it is not in the NUCC taxonomy list."
    ]


def test_a_quote_that_never_closes_is_said_with_the_line_it_opens_on(client_for, manager):
    # One stray quote swallows the rest of the file into one cell, past what a cell may hold.
    lines = [f"{make_npi(n)},Pat,Number{n},notes {'x' * 100}" for n in range(1500)]
    lines[2] = f'{make_npi(2)},"Pat,Number2,notes'
    sheet = "NPI,First name,Last name,Notes\n" + "\n".join(lines) + "\n"
    response = _upload(client_for(manager), sheet.encode())
    page = response.content.decode()
    assert "field limit" not in page
    assert "line 4" in page and "quote" in page
    assert not PartnerImport.objects.exists()


def test_excels_sep_line_names_the_delimiter_and_is_not_the_header():
    # "sep=;" on the first line tells Excel the delimiter; some tools write it for Excel.
    sheet = b"sep=;\r\nNPI;First name;Last name\r\n1679576722;Ana;Reyes, Jr.\r\n"
    table = read_table(io.BytesIO(sheet), "partners.csv")
    assert table.headers == ["NPI", "First name", "Last name"]
    assert table.rows == [["1679576722", "Ana", "Reyes, Jr."]]
    assert table.numbers == [3]


DOS_SHEET = "NPI,First name,Last name,Practice\r\n1679576722,José,Muñoz,Clínica Peña\r\n"


def test_a_dos_csv_from_an_old_practice_system_keeps_its_accented_names():
    # Code page 850 writes é as 0x82 and ñ as 0xA4, which Windows reads as a
    # low quotation mark and a currency sign.
    data = DOS_SHEET.encode("cp850")
    assert b"Jos\x82" in data and b"Mu\xa4oz" in data
    table = read_table(io.BytesIO(data), "partners.csv")
    assert table.rows == [["1679576722", "José", "Muñoz", "Clínica Peña"]]
    assert table.encoding == "cp850"


def test_a_windows_csv_with_accents_and_curly_apostrophes_is_still_read_as_windows():
    # O\u2019Brien: Excel's curly apostrophe, 0x92 in Windows and a letter (Æ) in DOS.
    sheet = "NPI,First name,Last name\r\n1679576722,José,Muñoz\r\n1234567893,Seán,O\u2019Brien\r\n"
    table = read_table(io.BytesIO(sheet.encode("cp1252")), "partners.csv")
    assert table.rows == [["1679576722", "José", "Muñoz"], ["1234567893", "Seán", "O\u2019Brien"]]
    assert table.encoding == "cp1252"


def test_the_preview_says_which_encoding_the_file_was_read_in(client_for, manager):
    client = client_for(manager)
    _upload(client, DOS_SHEET.encode("cp850"))
    partner_import = PartnerImport.objects.get()
    preview = client.get(partner_import.get_absolute_url()).content.decode()
    assert "read as DOS (Western European, code page 850)" in preview
    assert "José" in preview and "Muñoz" in preview


def test_the_encoding_chosen_on_the_upload_form_is_the_one_used(client_for, manager):
    client = client_for(manager)
    # In DOS code page 850 Á is 0xB5, which Windows reads as a letter too (µ): nothing in
    # the bytes says DOS, so the manager says so.
    sheet = "NPI,First name,Last name\r\n1679576722,Ana,ÁLVAREZ\r\n".encode("cp850")
    assert read_table(io.BytesIO(sheet), "partners.csv").rows[0][2] == "µLVAREZ"
    response = client.post(
        reverse("partners:import_upload"),
        {"file": SimpleUploadedFile("partners.csv", sheet), "encoding": "cp850"},
    )
    partner_import = PartnerImport.objects.get()
    assert response.url == reverse("partners:import_mapping", args=[partner_import.pk])
    assert partner_import.encoding == "cp850"
    assert partner_import.rows == [["1679576722", "Ana", "ÁLVAREZ"]]


def test_an_encoding_that_cannot_read_the_file_is_refused_with_a_reason(client_for, manager):
    response = client_for(manager).post(
        reverse("partners:import_upload"),
        {
            "file": SimpleUploadedFile("partners.csv", DOS_SHEET.encode("cp850")),
            "encoding": "utf-8",
        },
    )
    assert response.status_code == 200
    assert "cannot be read as UTF-8: choose another encoding, or Automatic." in (
        response.content.decode()
    )
    assert not PartnerImport.objects.exists()


def _workbook_with_an_office_merged_down():
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["NPI", "First name", "Last name", "Practice", "Notes", "Fax"])
    sheet.append([GOOD_NPI, "Ana", "Reyes", "Kearney Family Practice", "Lunch on Fridays", ""])
    sheet.append([OTHER_NPI, "Bo", "Lund", None, "", ""])
    sheet.append([KNOWN_NPI, "David", "Wiebe", None, "", ""])
    sheet.append([make_npi(7004), "Eve", "Moss", "Hastings Clinic", "", ""])
    sheet.merge_cells("D2:D4")  # the office, written once beside its three doctors
    sheet.merge_cells("E2:F2")  # a note spilling over the next column: not a fax
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_an_office_merged_down_several_rows_is_each_rows_office():
    table = read_table(io.BytesIO(_workbook_with_an_office_merged_down()), "partners.xlsx")
    assert [row[3] for row in table.rows] == ["Kearney Family Practice"] * 3 + ["Hastings Clinic"]
    assert table.rows[0][4:] == ["Lunch on Fridays", ""]
    assert [row[4] for row in table.rows[1:]] == ["", "", ""]


def test_partners_beside_a_merged_office_are_imported_into_that_office(
    client_for, manager, confirm_import
):
    client = client_for(manager)
    _upload(client, _workbook_with_an_office_merged_down(), "partners.xlsx")
    partner_import = PartnerImport.objects.get()
    preview = client.get(partner_import.get_absolute_url())
    assert preview.context["counts"]["create"] == 4
    confirm_import(client, partner_import)
    offices = dict(Provider.objects.values_list("last_name", "organization__name"))
    assert offices == {
        "Reyes": "Kearney Family Practice",
        "Lund": "Kearney Family Practice",
        "Wiebe": "Kearney Family Practice",
        "Moss": "Hastings Clinic",
    }
