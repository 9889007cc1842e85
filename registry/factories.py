from __future__ import annotations

import factory

from core.npi import npi_check_digit
from registry.geo import zip_centroid
from registry.models import PracticeLocation, RegistryProvider


def _centre(zip_code: str) -> tuple[float, float]:
    centre = zip_centroid(zip_code)
    assert centre is not None, f"{zip_code} is not a ZIP code the factories can place"
    return centre


def make_npi(n: int) -> str:
    # Kept apart from partners.factories' NPIs, so a registry row is a partner only when a
    # test makes it one.
    first_nine = f"1{50_000_000 + n:08d}"
    return f"{first_nine}{npi_check_digit(first_nine)}"


class RegistryProviderFactory(factory.django.DjangoModelFactory[RegistryProvider]):
    class Meta:
        model = RegistryProvider

    class Params:
        zip_code = "43215"

    npi = factory.Sequence(make_npi)
    entity_type = RegistryProvider.EntityType.INDIVIDUAL
    first_name = factory.Faker("first_name")
    last_name = factory.Sequence(lambda n: f"DOCTOR{n}")
    credential = "MD"
    primary_taxonomy_code = "207Q00000X"
    taxonomy_codes = factory.LazyAttribute(lambda o: o.primary_taxonomy_code)
    address_line1 = factory.Sequence(lambda n: f"{n} MAIN ST")
    city = "COLUMBUS"
    state = "OH"
    zip5 = factory.LazyAttribute(lambda o: o.zip_code)
    postal_code = factory.LazyAttribute(lambda o: o.zip_code)
    country = "US"
    latitude = factory.LazyAttribute(lambda o: _centre(o.zip_code)[0])
    longitude = factory.LazyAttribute(lambda o: _centre(o.zip_code)[1])


class PracticeLocationFactory(factory.django.DjangoModelFactory[PracticeLocation]):
    class Meta:
        model = PracticeLocation

    name = factory.Sequence(lambda n: f"Clinic {n}")
    address_line1 = "1 Clinic Way"
    city = "Columbus"
    state = "OH"
    zip_code = "43215"
    latitude = factory.LazyAttribute(lambda o: _centre(o.zip_code)[0])
    longitude = factory.LazyAttribute(lambda o: _centre(o.zip_code)[1])
