from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import PatientDataAccess
from intake.hl7 import Hl7Error, parse, read_referral_order
from intake.models import Hl7Import
from intake.services import referral_import_hl7
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.models import Referral, Status

# The real ONC 360X sample, in the shared reference data beside the repository.
SAMPLE = (
    Path(settings.BASE_DIR).parent
    / "shared"
    / "data"
    / "ihe_360x"
    / "omg_o19_360x_referral_request.hl7"
)


def _sample() -> bytes:
    return SAMPLE.read_bytes()


def _typed_npi(data: bytes, count: int = -1) -> bytes:
    """The sample with its referring provider's identifier typed NPI (XCN-13): the sample's
    own, 34225PC, is the sender's doctor number (DN)."""
    return data.replace(b"&ISO^L^^DN", b"&ISO^L^^NPI", count)


def test_the_real_360x_sample_reads_as_a_referral_order():
    order = read_referral_order(_sample())
    assert order.message_control_id == "17882"
    assert order.placer_order_number == "889342"
    assert (order.patient_last_name, order.patient_first_name) == ("Packton", "Peter")
    assert order.patient_dob == date(1958, 8, 17)
    assert (order.provider_last_name, order.provider_first_name) == ("Allen", "Anthony")
    assert order.provider_id == "34225PC"
    assert order.reason == "Rule out headache"
    assert order.urgency == "routine"


def test_newline_separated_segments_read_the_same():
    as_lines = _sample().replace(b"\r", b"\n")
    assert read_referral_order(as_lines) == read_referral_order(_sample())
    assert read_referral_order(_sample().replace(b"\r", b"\r\n")) == read_referral_order(_sample())


def test_escape_sequences_are_decoded():
    obr = "OBR" + "|" * 31 + r"^Pain \T\ swelling \F\ left \S\ knee\.br\x\X41\^"
    message = parse(r"MSH|^~\&|A|B" + "\r" + obr)
    obr = message.require("OBR")
    assert obr.component(31, 2) == "Pain & swelling | left ^ knee\n" + "x" + "A"


@pytest.mark.django_db
def test_the_sample_imports_as_a_received_e_referral_from_the_partner_of_that_name(coordinator):
    allen = ProviderFactory(first_name="Anthony", last_name="Allen")
    referral = referral_import_hl7(data=_sample(), actor=coordinator)
    assert referral.provider == allen
    assert referral.status == Status.RECEIVED
    assert referral.channel == Referral.Channel.E_REFERRAL
    assert referral.patient_last_name == "Packton"
    assert referral.reason == "Rule out headache"
    assert referral.hl7_import.message_control_id == "17882"
    assert PatientDataAccess.objects.get().action == PatientDataAccess.Action.CREATE


@pytest.mark.django_db
def test_an_unknown_provider_without_an_npi_is_refused_with_the_reason(coordinator):
    with pytest.raises(Hl7Error, match="Anthony Allen \\(ID 34225PC\\) has no NPI and matches no"):
        referral_import_hl7(data=_sample(), actor=coordinator)
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_a_provider_with_a_new_npi_becomes_a_prospect(coordinator):
    message = _typed_npi(_sample().replace(b"34225PC^Allen", b"1679576722^Allen"))
    referral = referral_import_hl7(data=message, actor=coordinator)
    provider = Provider.objects.get(npi="1679576722")
    assert referral.provider == provider
    assert provider.status == Provider.Status.PROSPECT
    assert provider.last_name == "Allen"


@pytest.mark.django_db
def test_a_doctor_number_whose_digits_pass_the_npi_check_is_not_taken_for_an_npi(coordinator):
    # Another partner's NPI, but the sender typed it as its own doctor number (DN).
    ProviderFactory(npi="1679576722", first_name="Grace", last_name="Hopper")
    allen = ProviderFactory(first_name="Anthony", last_name="Allen")
    message = _sample().replace(b"34225PC^Allen", b"1679576722^Allen")
    order = read_referral_order(message)
    assert (order.provider_id, order.provider_npi) == ("1679576722", "")
    referral = referral_import_hl7(data=message, actor=coordinator)
    assert referral.provider == allen
    assert Provider.objects.count() == 2


@pytest.mark.parametrize(
    "provider_field",
    [
        # Typed NPI (XCN-13), or checked by NPI's check digit scheme (XCN-12).
        b"1679576722^Allen^Anthony^^^^^^^L^^^NPI",
        b"1679576722^Allen^Anthony^^^^^^^L^^NPI",
        b"1679576722^Allen^Anthony^^^^^^^L^^NPI^NPI",
        # Assigned by the NPI authority (XCN-9), by its OID or its name, untyped.
        b"1679576722^Allen^Anthony^^^^^^&2.16.840.1.113883.4.6&ISO",
        b"1679576722^Allen^Anthony^^^^^^NPI",
        # The sender's doctor number first, the NPI in a repetition.
        b"34225PC^Allen^Anthony^^^^^^^L^^DN~1679576722^Allen^Anthony^^^^^^^L^^NPI",
        # Untyped and valid, as many senders leave it.
        b"1679576722^Allen^Anthony",
    ],
)
def test_the_npi_is_read_where_the_order_says_it_is(provider_field):
    sample_field = b"34225PC^Allen^Anthony^M^III^MD^^^&1.3.6.1.4.1.21367.2016.10.1.21.10&ISO^L^^DN"
    order = read_referral_order(_sample().replace(sample_field, provider_field))
    assert (order.provider_id, order.provider_npi) == ("1679576722", "1679576722")
    assert (order.provider_last_name, order.provider_first_name) == ("Allen", "Anthony")


def test_an_untyped_identifier_failing_the_npi_check_is_kept_as_an_id_only():
    order = read_referral_order(
        _sample().replace(b"&ISO^L^^DN", b"").replace(b"34225PC", b"1679576723")
    )
    assert (order.provider_id, order.provider_npi) == ("1679576723", "")


@pytest.mark.django_db
def test_a_partner_chosen_on_the_page_does_not_take_an_order_its_npi_names_another_s(
    client_for, coordinator
):
    allen = ProviderFactory(npi="1679576722", first_name="Anthony", last_name="Allen")
    # Left chosen from an earlier import that asked for it, or picked by mistake.
    other = ProviderFactory(first_name="Grace", last_name="Hopper")
    message = _typed_npi(_sample().replace(b"34225PC^Allen", b"1679576722^Allen"))
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"),
        {"message": SimpleUploadedFile("order.hl7", message), "provider": other.pk},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "NPI 1679576722" in page and allen.display_name in page
    assert not Referral.objects.exists()
    # Without the choice, the order goes to the partner its NPI names.
    referral_import_hl7(data=message, actor=coordinator)
    assert Referral.objects.get().provider == allen


@pytest.mark.django_db
def test_the_command_credits_its_provider_only_to_orders_whose_npi_names_no_partner(tmp_path):
    allen = ProviderFactory(npi="1679576722", first_name="Anthony", last_name="Allen")
    fallback = ProviderFactory()
    named = tmp_path / "named.hl7"
    named.write_bytes(_typed_npi(_sample().replace(b"34225PC^Allen", b"1679576722^Allen")))
    unnamed = tmp_path / "unnamed.hl7"
    unnamed.write_bytes(_sample().replace(b"|17882|", b"|17883|"))
    with pytest.raises(CommandError, match="1 of 2 file"):
        call_command("import_hl7", str(named), str(unnamed), "--provider-npi", fallback.npi)
    assert Referral.objects.get().provider == fallback
    assert not Referral.objects.filter(provider=allen).exists()


def test_every_reason_an_order_gives_is_kept():
    # OBR-31 repeats: an order may give several reasons for the referral.
    message = _sample().replace(b"^Rule out headache^", b"^Rule out headache^~R42^Dizziness^I10")
    assert read_referral_order(message).reason == "Rule out headache; Dizziness"


def test_the_patients_middle_names_are_kept_with_the_first_as_a_fhir_orders_given_names_are():
    message = _sample().replace(b"Packton^Peter^^^L", b"Packton^Peter^James Lee^^L")
    order = read_referral_order(message)
    assert (order.patient_first_name, order.patient_last_name) == ("Peter James Lee", "Packton")


def test_the_orders_notes_follow_its_reasons_and_the_patients_are_not_taken_for_them():
    # NTE segments after the order (ORC/OBR) are the referring provider's notes on it, one
    # per line after the reasons, as a FHIR order's notes are kept; NTE-3 repeats. A note
    # on the patient (after PID) is not about this referral and stays out.
    message = (
        _sample().replace(b"|M|\r", b"|M|\rNTE|1||Prefers a morning appointment|\r").rstrip(b"\r")
        + b"\rNTE|1||Headaches for three weeks, worse on waking.~MRI 11/2 normal.|"
        + b"\rNTE|2||Wife drives: call her on 402-555-0142 \\T\\ leave a message.|\r"
    )
    assert message.count(b"NTE|") == 3
    assert read_referral_order(message).reason == (
        "Rule out headache\n"
        "Headaches for three weeks, worse on waking.\n"
        "MRI 11/2 normal.\n"
        "Wife drives: call her on 402-555-0142 & leave a message."
    )


def test_an_order_giving_its_reason_only_in_a_note_is_read():
    message = _sample().replace(b"^Rule out headache^", b"").rstrip(b"\r") + (
        b"\rNTE|1||Persistent headache, please see within the month.|"
    )
    assert (
        read_referral_order(message).reason == "Persistent headache, please see within the month."
    )


@pytest.mark.django_db
def test_priority_stat_becomes_a_stat_referral(coordinator):
    message = _sample().replace(b"||||||||20161018235959+0000|", b"||||||||20161018235959+0000|S")
    referral = referral_import_hl7(data=message, actor=coordinator, provider=ProviderFactory())
    assert referral.urgency == Referral.Urgency.STAT


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "urgency"), [(b"PRN", "routine"), (b"P", "urgent")])
def test_an_as_needed_order_is_routine_not_read_as_preop(coordinator, code, urgency):
    # HL7 table 0485: PRN is "as needed"; P alone is pre-op.
    message = _sample().replace(
        b"||||||||20161018235959+0000|", b"||||||||20161018235959+0000|" + code
    )
    referral = referral_import_hl7(data=message, actor=coordinator, provider=ProviderFactory())
    assert referral.urgency == urgency


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "urgency"),
    [
        # Within hours (or less): sooner than any target but stat's.
        (b"TH4", "stat"),
        (b"TM30", "stat"),
        # Within days, weeks or months: the least urgent whose appointment target (stat
        # 1 day, urgent 7, routine 30 by default) meets the time asked for.
        (b"TD2", "stat"),
        (b"TD7", "urgent"),
        (b"TW2", "urgent"),
        (b"TD45", "routine"),
        (b"TL2", "routine"),
        # Timing critical with no interval: urgent; a code of no known form: routine.
        (b"T", "urgent"),
        (b"TX9", "routine"),
    ],
)
def test_a_timing_critical_order_is_as_urgent_as_the_time_it_asks_for(coordinator, code, urgency):
    # HL7 table 0485: T, and TS/TM/TH/TD/TW/TL followed by a number ("within n days").
    message = _sample().replace(
        b"||||||||20161018235959+0000|", b"||||||||20161018235959+0000|" + code
    )
    referral = referral_import_hl7(data=message, actor=coordinator, provider=ProviderFactory())
    assert referral.urgency == urgency


@pytest.mark.django_db
def test_within_n_days_is_read_against_the_practice_s_own_targets(coordinator):
    from referrals.models import SlaTarget

    SlaTarget.objects.update_or_create(
        urgency="urgent", defaults={"first_contact_hours": 8, "appointment_days": 3}
    )
    message = _sample().replace(b"||||||||20161018235959+0000|", b"||||||||20161018235959+0000|TD3")
    referral = referral_import_hl7(data=message, actor=coordinator, provider=ProviderFactory())
    assert referral.urgency == "urgent"


@pytest.mark.django_db
def test_the_same_message_is_imported_once(coordinator):
    provider = ProviderFactory()
    first = referral_import_hl7(data=_sample(), actor=coordinator, provider=provider)
    with pytest.raises(Hl7Error, match=f"already imported as referral #{first.pk}"):
        referral_import_hl7(data=_sample(), actor=coordinator, provider=provider)
    assert Hl7Import.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "must start with an MSH segment"),
        (b"hello world", "must start with an MSH segment"),
        (b"\x00\xff" * 100, "must start with an MSH segment"),
        (b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rPID|1", "this message is ADT^A01"),
        (b"MSH|^~\\&|A|B|C|D|20240101||OMG^O19|1|P|2.5.1\rORC|NW", "no PID segment"),
        (
            b"MSH|^~\\&|A|B|C|D|20240101||OMG^O19|1|P|2.5.1\rPID|1||X||Doe^Jane||notadate\rORC|NW",
            "date of birth (PID-7)",
        ),
        (
            b"MSH|^~\\&|A|B|C|D|20240101||OMG^O19|1|P|2.5.1\rPID|1||X||Doe^Jane||19700101\rORC|NW",
            "no reason",
        ),
        (b"MSH|^~\\&|A\r<script>alert(1)</script>", "Line 2 does not start with a segment name"),
    ],
)
def test_bad_messages_are_refused_with_the_reason(data, reason):
    with pytest.raises(Hl7Error, match=re.escape(reason)):
        read_referral_order(data)


@pytest.mark.django_db
def test_a_file_of_two_messages_is_refused_rather_than_the_second_dropped(client_for, coordinator):
    ProviderFactory(first_name="Anthony", last_name="Allen")
    second = _sample().replace(b"|17882|", b"|17883|").replace(b"Packton^Peter", b"Ortiz^Ana")
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"),
        {"message": SimpleUploadedFile("orders.hl7", _sample() + b"\r" + second)},
    )
    assert response.status_code == 200
    assert "holds 2 messages" in response.content.decode()
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_a_coordinator_uploads_a_message_and_lands_on_the_new_referral(client_for, coordinator):
    provider = ProviderFactory()
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"),
        {"message": SimpleUploadedFile("order.hl7", _sample()), "provider": provider.pk},
    )
    referral = Referral.objects.get()
    assert response.url == referral.get_absolute_url()
    assert referral.provider == provider


@pytest.mark.django_db
def test_an_upload_that_is_not_hl7_is_refused_on_the_page(client_for, coordinator):
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"),
        {"message": SimpleUploadedFile("order.hl7", b"%PDF-1.4 not hl7")},
    )
    assert response.status_code == 200
    assert "must start with an MSH segment" in response.content.decode()
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_an_unknown_referrer_without_an_npi_is_explained_with_where_to_find_them(
    client_for, coordinator
):
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"), {"message": SimpleUploadedFile("order.hl7", _sample())}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "has no NPI and matches no partner" in page
    guidance = re.search(r'data-testid="unknown-referrer">(.*?)</div>', page, re.S)[1]
    assert "<strong>Anthony Allen</strong> is not one of our partners yet" in guidance
    assert f'href="{reverse("registry:finder")}?name=Allen"' in guidance
    assert "choose them under “Referring partner”" in guidance
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_an_order_naming_no_referrer_says_so_rather_than_a_blank_name(client_for, coordinator):
    provider_field = (
        b"34225PC^Allen^Anthony^M^III^MD^^^&1.3.6.1.4.1.21367.2016.10.1.21.10&ISO^L^^DN"
    )
    message = _sample().replace(provider_field, b"")
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"), {"message": SimpleUploadedFile("order.hl7", message)}
    )
    page = response.content.decode()
    assert response.status_code == 200
    guidance = re.search(r'data-testid="unknown-referrer">(.*?)</div>', page, re.S)[1]
    assert "The message names no referring provider (ORC-12 and OBR-16 are empty)" in guidance
    assert "<strong> </strong>" not in guidance and "?name=" not in guidance
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_a_liaison_cannot_import(client_for, liaison):
    assert client_for(liaison).get(reverse("intake:hl7_upload")).status_code == 403


@pytest.mark.django_db
def test_the_command_imports_a_file_and_reports_refusals(tmp_path, capsys):
    provider = ProviderFactory()
    good = tmp_path / "order.hl7"
    good.write_bytes(_sample())
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(b"not hl7")
    call_command("import_hl7", str(good), "--provider-npi", provider.npi)
    output = capsys.readouterr().out
    referral = Referral.objects.get()
    assert f"imported as referral #{referral.pk}" in output
    assert "Packton" not in output
    with pytest.raises(CommandError, match="1 of 1 file"):
        call_command("import_hl7", str(bad))
    assert "must start with an MSH segment" in capsys.readouterr().err


@pytest.mark.django_db
def test_a_message_with_a_nul_character_is_refused_with_the_reason(client_for, coordinator):
    data = _sample().replace(b"Packton", b"Pack\x00ton")
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"),
        {"message": SimpleUploadedFile("order.hl7", data), "provider": ProviderFactory().pk},
    )
    assert response.status_code == 200
    assert "contains NUL characters" in response.content.decode()
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_control_characters_spelled_as_hex_escapes_are_left_out(coordinator):
    data = _sample().replace(b"Rule out headache", b"Rule out\\X00\\ headache\\X07\\")
    referral = referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert "Rule out headache" in referral.reason
    assert "\x00" not in referral.reason and "\x07" not in referral.reason


@pytest.mark.django_db
def test_a_control_id_too_long_to_keep_is_refused_and_so_imported_only_once(coordinator):
    data = _sample().replace(b"|17882|", b"|" + b"9" * 250 + b"|")
    with pytest.raises(Hl7Error, match=r"control ID \(MSH-10\) or sending application"):
        referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_a_message_imported_by_someone_else_at_the_same_moment_is_refused(coordinator):
    """The once-only check found nothing, then the other import committed first: the
    unique constraint decides, and the loser gets the reason, not a server error."""
    from unittest import mock

    provider = ProviderFactory()
    referral_import_hl7(data=_sample(), actor=coordinator, provider=provider)
    # The race: at the moment of the check the other import had not committed yet.
    with mock.patch("intake.services.Hl7Import.objects.filter") as looked_up:
        looked_up.return_value.values_list.return_value.first.return_value = None
        with pytest.raises(Hl7Error, match="was already imported"):
            referral_import_hl7(data=_sample(), actor=coordinator, provider=provider)
    assert Referral.objects.count() == 1


@pytest.mark.django_db
def test_raw_control_characters_in_a_message_are_left_out_of_the_referral(coordinator):
    data = _sample().replace(b"Packton^Peter", b"Pack\x01\x07ton^Pe\x1bter")
    referral = referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert (referral.patient_last_name, referral.patient_first_name) == ("Packton", "Peter")


@pytest.mark.django_db
def test_an_order_with_a_birth_year_before_1900_is_refused_with_the_reason(coordinator):
    data = _sample().replace(b"|19580817|", b"|18580817|")
    with pytest.raises(Hl7Error, match="before 1900"):
        referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert not Referral.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"Packton^Peter", b"P" * 5000 + b"^Peter", r"patient's name \(PID-5\) is longer than 100"),
        (
            b"Packton^Peter",
            b"Packton^" + b"P" * 101,
            r"patient's name \(PID-5\) is longer than 100",
        ),
        (b"^Allen^Anthony^", b"^" + b"A" * 101 + b"^Anthony^", r"provider's name \(ORC-12\)"),
        (b"|889342^", b"|" + b"8" * 201 + b"^", r"placer order number \(ORC-2\)"),
    ],
)
def test_a_field_too_long_to_keep_is_refused_naming_it_not_cut(coordinator, old, new, reason):
    data = _sample().replace(old, new, 1)
    with pytest.raises(Hl7Error, match=reason):
        referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_a_new_npi_with_a_name_too_long_to_keep_adds_no_prospect(coordinator):
    data = _typed_npi(_sample().replace(b"34225PC^Allen", b"1234567893^" + b"A" * 150, 1), 1)
    with pytest.raises(Hl7Error, match=r"provider's name \(ORC-12\) is longer than 100"):
        referral_import_hl7(data=data, actor=coordinator)
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_a_sending_application_too_long_to_keep_is_refused(coordinator):
    data = _sample().replace(b"MSH|^~\\&||", b"MSH|^~\\&|" + b"A" * 250 + b"|", 1)
    assert data != _sample()
    with pytest.raises(Hl7Error, match=r"sending application \(MSH-3 and MSH-4\)"):
        referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert not Referral.objects.exists()


def _with_phone(phone: bytes) -> bytes:
    """The sample with PID-13 (home phone) given."""
    return _sample().replace(b"|M|", b"|M|||||" + phone + b"|", 1)


@pytest.mark.django_db
@pytest.mark.parametrize("phone", [b"call the mother", b"555-0100", b"9" * 40])
def test_a_patient_phone_that_is_no_us_number_is_refused_naming_it(coordinator, phone):
    with pytest.raises(Hl7Error, match=r"patient's phone \(PID-13\)"):
        referral_import_hl7(data=_with_phone(phone), actor=coordinator, provider=ProviderFactory())
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_the_command_refusing_a_patient_phone_does_not_print_it(tmp_path, capsys):
    # The command runs from cron and scripts, whose output is kept in logs: a refusal
    # names the field at fault, never the patient's phone.
    bad = tmp_path / "order.hl7"
    bad.write_bytes(_with_phone(b"+44 20 7946 0958"))
    with pytest.raises(CommandError, match="1 of 1 file"):
        call_command("import_hl7", str(bad), "--provider-npi", ProviderFactory().npi)
    output = capsys.readouterr()
    assert "patient's phone (PID-13)" in output.err
    assert "7946" not in output.out + output.err


def test_a_segment_broken_across_lines_is_refused_without_quoting_it():
    # A stray line break inside PID: its second half starts with the patient's details.
    broken = _sample().replace(b"Packton^Peter", b"\rPackton^Peter", 1)
    with pytest.raises(Hl7Error) as refused:
        read_referral_order(broken)
    assert "does not start with a segment name" in str(refused.value)
    assert "Packton" not in str(refused.value) and "Line 3" in str(refused.value)


@pytest.mark.django_db
def test_a_patient_phone_is_stored_as_staff_dial_it(coordinator):
    typed = {b"402.555.0100 x12": "(402) 555-0100 x12", b"^^^^^402^5550100": "(402) 555-0100"}
    for number, (phone, stored) in enumerate(typed.items()):
        referral = referral_import_hl7(
            data=_with_phone(phone).replace(b"|17882|", f"|{number}|".encode()),
            actor=coordinator,
            provider=ProviderFactory(),
        )
        assert referral.patient_phone == stored


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        # v2.5.1 sends an email address as a PID-13 repetition of its own (NET, Internet);
        # the phone may come after it.
        (b"^NET^Internet^ruth@example.com~^PRN^PH^^^402^5550100", "(402) 555-0100"),
        (b"ruth@example.com^NET^Internet~(402)555-0100^PRN^PH", "(402) 555-0100"),
        # The extension in its own component (XTN-8).
        (b"^PRN^PH^^^402^5550100^12", "(402) 555-0100 x12"),
    ],
)
def test_the_patient_phone_is_found_wherever_pid_13_sends_it(coordinator, phone, stored):
    referral = referral_import_hl7(
        data=_with_phone(phone), actor=coordinator, provider=ProviderFactory()
    )
    assert referral.patient_phone == stored


def _with_character_set(declared: bytes, data: bytes | None = None) -> bytes:
    """The sample (or `data`) with MSH-18 (character set) given."""
    message = _sample() if data is None else data
    return message.replace(b"|NE|NE|||||360X|", b"|NE|NE||" + declared + b"|||360X|", 1)


def _with_name(name: bytes) -> bytes:
    return _sample().replace(b"Packton^Peter", name + b"^Peter", 1)


@pytest.mark.django_db
def test_a_utf_8_message_with_a_stray_latin_1_byte_is_refused_not_garbled(coordinator):
    # The name in UTF-8, a note typed on another system in Latin-1.
    data = _with_name("Müller".encode()) + b"\rNTE|1||Gr\xfc\xdfe"
    with pytest.raises(Hl7Error, match=r"not UTF-8 text \(byte [0-9,]+\) and does not name"):
        referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    with pytest.raises(Hl7Error, match=r"not UNICODE UTF-8 text as its character set \(MSH-18\)"):
        read_referral_order(_with_character_set(b"UNICODE UTF-8", data))
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("declared", "name"),
    [
        (b"", "Müller".encode()),
        (b"UNICODE UTF-8", "Müller".encode()),
        (b"8859/1", "Müller".encode("latin-1")),
        (b"8859/1~UNICODE UTF-8", "Müller".encode("latin-1")),
        (b"8859/2", "Müller".encode("iso8859-2")),
        (b"8859/15", "Müller".encode("iso8859-15")),
    ],
)
def test_a_name_reads_in_the_character_set_msh_18_names(declared, name):
    order = read_referral_order(_with_character_set(declared, _with_name(name)))
    assert order.patient_last_name == "Müller"


@pytest.mark.parametrize(
    ("declared", "name", "reason"),
    [
        (b"ASCII", "Müller".encode("latin-1"), r"not ASCII text as its character set"),
        (b"UNICODE UTF-8", "Müller".encode("latin-1"), r"not UNICODE UTF-8 text"),
        (b"EBCDIC", b"Muller", r"character set \(MSH-18\) .EBCDIC. is not one this import reads"),
    ],
)
def test_a_message_not_in_the_character_set_msh_18_names_is_refused(declared, name, reason):
    with pytest.raises(Hl7Error, match=reason):
        read_referral_order(_with_character_set(declared, _with_name(name)))


def test_hex_escapes_spell_bytes_of_the_message_character_set():
    utf_8 = _with_name(b"M\\XC3BC\\ller")
    assert read_referral_order(utf_8).patient_last_name == "Müller"
    latin_1 = _with_character_set(b"8859/1", _with_name(b"M\\XFC\\ller"))
    assert read_referral_order(latin_1).patient_last_name == "Müller"
    with pytest.raises(Hl7Error, match="escape sequence"):
        read_referral_order(_with_name(b"M\\XFC\\ller"))


@pytest.mark.django_db
def test_a_patient_name_of_invisible_characters_only_is_refused_not_stored_empty(coordinator):
    # U+200B and U+202E are taken out before saving: nothing of the family name would be left.
    data = _sample().replace(b"Packton^", "\u200b\u202e^".encode(), 1)
    with pytest.raises(Hl7Error, match="Patient last name holds only invisible characters"):
        referral_import_hl7(data=data, actor=coordinator, provider=ProviderFactory())
    assert not Referral.objects.exists()


@pytest.mark.django_db
def test_a_new_npi_named_with_invisible_characters_only_is_refused_on_the_page(
    client_for, coordinator
):
    data = _typed_npi(_sample().replace(b"34225PC^Allen", "1679576722^\u200b".encode(), 1), 1)
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"), {"message": SimpleUploadedFile("order.hl7", data)}
    )
    assert response.status_code == 200
    assert "Last name holds only invisible characters" in response.content.decode()
    assert not Provider.objects.exists()
    assert not Referral.objects.exists()
