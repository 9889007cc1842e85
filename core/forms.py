from typing import Any

from django import forms


class UserChoiceField(forms.ModelChoiceField):
    """Shows people by name, not by login."""

    def label_from_instance(self, obj: Any) -> str:
        return obj.get_full_name() or obj.get_username()
