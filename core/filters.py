from typing import Any

import django_filters
from django import forms


class StyledFilterSet(django_filters.FilterSet):
    """A FilterSet whose form widgets carry Bootstrap's classes."""

    @property
    def form(self) -> forms.Form:
        form = super().form
        for field in form.fields.values():
            widget: Any = field.widget
            if isinstance(widget, (forms.CheckboxInput, forms.CheckboxSelectMultiple)):
                continue
            css = "form-select" if isinstance(widget, forms.Select) else "form-control"
            widget.attrs.setdefault("class", css)
            widget.attrs.setdefault("aria-label", str(field.label))
        return form
