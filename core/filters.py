from typing import Any

import django_filters
from django import forms

from core.forms import ShortListIterator
from core.templatetags.people import person


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


class _PersonFilterIterator(django_filters.fields.ModelChoiceIterator, ShortListIterator):
    """django-filter's "nobody" option, and the people read in one plain query."""


class _PersonFilterField(django_filters.fields.ModelChoiceField):
    iterator = _PersonFilterIterator

    def label_from_instance(self, obj: Any) -> str:
        return person(obj)


class PersonFilter(django_filters.ModelChoiceFilter):
    """Filter by a person (coordinator, owner), shown by name rather than login."""

    field_class = _PersonFilterField
