from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse

from partners.models import Organization, Provider


class ProviderPicker(forms.HiddenInput):
    """A type-ahead for choosing one partner out of thousands: a search box that asks
    the server for matches (htmx) and a hidden input holding the chosen provider's id."""

    template_name = "widgets/provider_picker.html"

    @property
    def is_hidden(self) -> bool:
        # Rendered with a visible search box, so forms must show its label and errors.
        return False

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        label = ""
        # The value comes back from the user on a re-rendered form: it may be anything.
        if str(value or "").isdigit() and len(str(value)) < 19:
            provider = Provider.objects.filter(pk=value).select_related("organization").first()
            if provider is not None:
                label = provider.display_name
        context["widget"]["label"] = label
        context["widget"]["search_url"] = reverse("partners:provider_typeahead")
        return context


class OfficePicker(forms.HiddenInput):
    """The same type-ahead for choosing one office: a search box (htmx) over
    `typeahead_url` and a hidden input holding the chosen office's id. The endpoint
    decides which offices may be found, answering with `widgets/office_picker.html#options`."""

    template_name = "widgets/office_picker.html"

    def __init__(
        self, *, typeahead_url: str, placeholder: str = "Type an office name", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.typeahead_url = typeahead_url
        self.placeholder = placeholder

    @property
    def is_hidden(self) -> bool:
        return False

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        label = ""
        if str(value or "").isdigit() and len(str(value)) < 19:
            office = Organization.objects.filter(pk=value).only("name").first()
            if office is not None:
                label = office.name
        context["widget"].update(
            label=label, typeahead_url=str(self.typeahead_url), placeholder=self.placeholder
        )
        return context
