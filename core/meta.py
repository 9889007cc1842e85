"""A model's own fields by name, typed as fields.

`Model._meta.get_field(name)` may also return a reverse relation, which has no
`verbose_name`, `attname` or `max_length`; the callers here only name the model's own
columns, and say so by asking through `own_field`."""

from django.db.models import Field, Model


def own_field(model: type[Model] | Model, name: str) -> Field:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model._meta.label}.{name} is a reverse relation"
    return field
