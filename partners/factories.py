from __future__ import annotations

import factory

from core.npi import npi_check_digit
from partners.models import Organization, Provider, StaffMember

# Real NUCC codes for the specialties a typical referral network holds.
SPECIALTIES = [
    ("207Q00000X", "Family Medicine"),
    ("207R00000X", "Internal Medicine"),
    ("208000000X", "Pediatrics"),
    ("207V00000X", "Obstetrics & Gynecology"),
    ("207RC0000X", "Cardiovascular Disease"),
    ("207X00000X", "Orthopaedic Surgery"),
    ("2084N0400X", "Neurology"),
    ("207N00000X", "Dermatology"),
    ("207RE0101X", "Endocrinology, Diabetes & Metabolism"),
    ("363LF0000X", "Nurse Practitioner, Family"),
    ("363A00000X", "Physician Assistant"),
    ("207P00000X", "Emergency Medicine"),
]


def make_npi(sequence: int, *, entity_type: int = 1) -> str:
    first_nine = f"{entity_type}{sequence % 10**8:08d}"
    return first_nine + str(npi_check_digit(first_nine))


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization

    name = factory.LazyAttribute(lambda o: f"{o.city_name} {o.kind}")
    # 555: a real exchange never starts with 0 or 1, and the import refuses one that does.
    phone = factory.Faker("numerify", text="(402) 555-####")
    fax = factory.Faker("numerify", text="(402) 555-####")
    email = factory.LazyAttribute(
        lambda o: f"referrals@{o.city_name.lower().replace(' ', '')}.example"
    )
    address_line1 = factory.Faker("street_address")
    city = factory.LazyAttribute(lambda o: o.city_name)
    state = "NE"
    zip_code = factory.Faker("numerify", text="68###")

    class Params:
        city_name = factory.Faker("city")
        kind = factory.Faker(
            "random_element",
            elements=[
                "Family Practice",
                "Medical Group",
                "Primary Care",
                "Health Clinic",
                "Internal Medicine",
                "Pediatrics",
            ],
        )


class ProviderFactory(factory.django.DjangoModelFactory[Provider]):
    class Meta:
        model = Provider

    npi = factory.Sequence(lambda n: make_npi(n + 1))
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    credential = factory.Faker("random_element", elements=["MD", "MD", "DO", "NP", "PA-C"])
    taxonomy_code = factory.LazyAttribute(lambda p: p.specialty_pair[0])
    specialty = factory.LazyAttribute(lambda p: p.specialty_pair[1])
    organization = factory.SubFactory(OrganizationFactory)
    status = Provider.Status.ACTIVE

    class Params:
        specialty_pair = factory.Faker("random_element", elements=SPECIALTIES)


class StaffMemberFactory(factory.django.DjangoModelFactory[StaffMember]):
    class Meta:
        model = StaffMember

    organization = factory.SubFactory(OrganizationFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = factory.Faker("random_element", elements=StaffMember.Role.values)
    phone = factory.Faker("numerify", text="(402) ###-####")
