"""The form renderer: widgets drawn with Jinja2, the rest of the page with Django templates.

A select or a group of checkboxes renders one small template per option. In the Django
template language that was a fifth of the work queue's time (its filters and bulk form);
the same widget templates in Jinja2 (Django ships them) render several times faster. Pages
stay Django templates: only widgets go through Jinja2, and a widget that has no Jinja2
template (the admin's, for one) falls back to the Django template engine, so nothing has
to be written twice but the project's own custom widgets (see partners/jinja2/).
"""

from __future__ import annotations

from typing import Any

from django.forms.renderers import Jinja2, TemplatesSetting
from django.template import TemplateDoesNotExist
from django.utils.functional import cached_property


class WidgetRenderer(Jinja2):
    def __init__(self) -> None:
        super().__init__()
        # Names with no Jinja2 template, so a miss is looked up on disk once, not per use.
        self.django_only: set[str] = set()

    @cached_property
    def fallback(self) -> TemplatesSetting:
        return TemplatesSetting()

    def get_template(self, template_name: str) -> Any:
        if template_name not in self.django_only:
            try:
                return super().get_template(template_name)
            except TemplateDoesNotExist:
                self.django_only.add(template_name)
        return self.fallback.get_template(template_name)
