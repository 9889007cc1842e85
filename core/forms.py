from datetime import datetime
from typing import Any, cast

from django import forms

from core.ids import parse_id
from core.templatetags.people import person


class ShortListIterator(forms.models.ModelChoiceIterator):
    """Options for a short list (people, say) read in one plain query. Django's iterator
    streams through a server-side cursor on Postgres, which costs three round trips to
    the database for a dozen rows."""

    def __iter__(self) -> Any:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        rows = getattr(self.field, "shared_rows", None)
        for obj in list(self.queryset) if rows is None else rows:
            yield self.choice(obj)


def share_choices(*fields: forms.Field) -> None:
    """Several fields of one page offering the same short list (the queue's filter and its
    bulk form both list the coordinators) read it once. Only what is shown: a posted
    value is still checked against each field's own queryset.

    Each field is a UserChoiceField (a form's `fields[name]` is typed as any Field)."""
    people = [cast(UserChoiceField, field) for field in fields]
    queryset = people[0].queryset
    assert queryset is not None, "a UserChoiceField is made with its queryset"
    rows = list(queryset)
    for field in people:
        field.shared_rows = rows


class UserChoiceField(forms.ModelChoiceField):
    """Shows people by name, not by login."""

    iterator = ShortListIterator
    # The rows ShortListIterator shows, when share_choices gave several fields one read.
    shared_rows: list[Any] | None = None

    def label_from_instance(self, obj: Any) -> str:
        return person(obj)


class IdsMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A multiple choice of rows whose posted ids are first checked to be ids a 64-bit
    column holds: Django looks them up with `pk__in`, which SQLite and Postgres refuse with
    an overflow (a server error) instead of finding nothing."""

    def _check_values(self, value: Any) -> Any:
        for pk in value:
            text = str(pk).strip()
            if parse_id(text) is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": text[:30]},
                )
        # django-stubs leave out this private method of ModelMultipleChoiceField.
        return super()._check_values(value)  # type: ignore[misc]


def parse_version(form: forms.BaseForm, value: str) -> datetime | None:
    """A hidden `version` field: the updated_at of the record (a referral, a partner) when
    the page was loaded. One the page did not send is an error of the whole form, drawn
    above it (a hidden field has nowhere to show its own)."""
    if not value:
        return None
    try:
        version = datetime.fromisoformat(value)
    except ValueError:
        version = None
    if version is None or version.tzinfo is None:
        # The page always sends one with its offset: anything else was not sent by it,
        # and would switch off the check that nobody changed the record meanwhile.
        form.add_error(None, "The page was not understood: reload it and try again.")
        return None
    return version
