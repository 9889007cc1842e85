from datetime import date, timedelta
from typing import Any

import django_filters
from django import forms
from django_filters.constants import EMPTY_VALUES

from core.dates import local_day_start
from core.forms import ShortListIterator, UserChoiceField
from core.templatetags.people import person


class LocalDayFilter(django_filters.DateFilter):
    """A from-date or a to-date (`end="from"` or `"to"`, both included) on a time field,
    in whole days of the practice's clock, filtered as a range of the indexed time:
    turning every row's time into a date made a to-date read every newer row first."""

    def __init__(self, *args: Any, end: str, **kwargs: Any) -> None:
        if end not in ("from", "to"):
            raise ValueError(f"end is 'from' or 'to', not {end!r}")
        self.end = end
        super().__init__(*args, **kwargs)

    def filter(self, qs: Any, value: Any) -> Any:
        if value in EMPTY_VALUES:
            return qs
        if self.end == "from":
            return qs.filter(**{f"{self.field_name}__gte": local_day_start(value)})
        if value == date.max:
            return qs  # every time is before the calendar's last day ends
        return qs.filter(**{f"{self.field_name}__lt": local_day_start(value + timedelta(days=1))})


class DateRangeFilterForm(forms.Form):
    """A filter form with a from-date and a to-date (`date_range` names them): a from-date
    after the to-date finds nothing, which is said instead of showing an empty list."""

    date_range: tuple[str, str] = ("after", "before")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start_name, end_name = self.date_range
        start, end = data.get(start_name), data.get(end_name)
        if start and end and start > end:
            self.add_error(
                end_name,
                f"This date is before “{self.fields[start_name].label}” ({start:%b %-d, %Y}): "
                "nothing can match both.",
            )
        return data


class StyledFilterSet(django_filters.FilterSet):
    """A FilterSet whose form widgets carry Bootstrap's classes.

    django-filter builds a new form class, with a new field for every filter, on every
    request. A filterset whose fields never depend on the request (no queryset chosen per
    user, say) sets `static_form = True`: its form class is built once per process, and
    each form still gets its own copies of the fields, as any Django form does.
    """

    static_form = False

    def get_form_class(self) -> type[forms.Form]:
        cls = type(self)
        if not cls.static_form:
            return _styled(super().get_form_class())
        form_class = cls.__dict__.get("_static_form_class")
        if form_class is None:
            form_class = _styled(super().get_form_class())
            cls._static_form_class = form_class
        return form_class


def _styled(form_class: type[forms.Form]) -> type[forms.Form]:
    for field in form_class.base_fields.values():
        widget: Any = field.widget
        if isinstance(widget, (forms.CheckboxInput, forms.CheckboxSelectMultiple)):
            # Bootstrap's own checkbox: a real tap target on a phone, not a bare 13 px box.
            widget.attrs.setdefault("class", "form-check-input")
            continue
        css = "form-select" if isinstance(widget, forms.Select) else "form-control"
        widget.attrs.setdefault("class", css)
        widget.attrs.setdefault("aria-label", str(field.label))
    return form_class


class _PersonFilterIterator(django_filters.fields.ModelChoiceIterator, ShortListIterator):
    """django-filter's "nobody" option, and the people read in one plain query."""


class _PersonFilterField(django_filters.fields.ModelChoiceField, UserChoiceField):
    iterator = _PersonFilterIterator

    def label_from_instance(self, obj: Any) -> str:
        return person(obj)


class PersonFilter(django_filters.ModelChoiceFilter):
    """Filter by a person (coordinator, owner), shown by name rather than login."""

    field_class = _PersonFilterField
