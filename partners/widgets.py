from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse_lazy
from django.utils.functional import Promise

from core.ids import parse_id
from partners.models import Organization, Provider


class TypeaheadPicker(forms.HiddenInput):
    """A type-ahead for choosing one record out of thousands: a search box that asks
    `typeahead_url` for matches (htmx) and a hidden input holding the chosen record's id.
    The endpoint decides which records may be found and answers with an options list."""

    template_name = "widgets/typeahead_picker.html"
    typeahead_url: str | Promise = ""
    placeholder = ""
    aria_label = ""

    def __init__(
        self, *, typeahead_url: Any = None, placeholder: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # `is not None`, not truthiness: testing a reverse_lazy() would resolve it while the
        # URLconf that imports this form is still loading.
        if typeahead_url is not None:
            self.typeahead_url = typeahead_url
        if placeholder is not None:
            self.placeholder = placeholder

    @property
    def is_hidden(self) -> bool:
        # Rendered with a visible search box, so forms must show its label and errors.
        return False

    def label_for(self, pk: int) -> str:
        raise NotImplementedError

    def describe(self, pk: int) -> tuple[str, dict[str, str]]:
        """The chosen record's label, and data-* attributes for the page's scripts."""
        return self.label_for(pk), {}

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        # What was typed in the search box, shown again if the form comes back with an
        # error and nothing was picked (each form has its own copy of the widget).
        self.typed = str(data.get(f"{name}_search", ""))[:200]
        return super().value_from_datadict(data, files, name)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        # The value comes back from the user on a re-rendered form: it may be anything.
        pk = parse_id(value or "")
        label, data = self.describe(pk) if pk is not None else ("", {})
        invalid = "is-invalid" in str(context["widget"]["attrs"].get("class", ""))
        context["widget"].update(
            label=label,
            search_text=label or getattr(self, "typed", ""),
            invalid=invalid,
            typeahead_url=str(self.typeahead_url),
            placeholder=self.placeholder,
            aria_label=self.aria_label,
            choice_data=data,
        )
        return context


class ProviderPicker(TypeaheadPicker):
    """Choosing one partner; answered by partners:provider_typeahead."""

    typeahead_url = reverse_lazy("partners:provider_typeahead")
    placeholder = "Type a name, NPI or office"
    aria_label = "Search partners"

    def label_for(self, pk: int) -> str:
        return self.describe(pk)[0]

    def describe(self, pk: int) -> tuple[str, dict[str, str]]:
        # Whether the chosen partner is in network: the form asks why of one who is not.
        found = (
            Provider.objects.filter(pk=pk)
            .only("first_name", "last_name", "credential", "in_network")
            .first()
        )
        if found is None:
            return "", {}
        return found.display_name, {"in-network": "true" if found.in_network else "false"}


class OfficePicker(TypeaheadPicker):
    """Choosing one office; the view that builds the form passes the endpoint, which
    decides which offices may be found."""

    placeholder = "Type an office name"

    def label_for(self, pk: int) -> str:
        office = Organization.objects.filter(pk=pk).only("name").first()
        return office.name if office else ""
