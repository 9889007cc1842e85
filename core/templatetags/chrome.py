"""`{% layout %}title{% content %}body{% endlayout %}`: a Django template page inside the
one page layout, which is written in Jinja2 (core/jinja2/layout.html) for the busiest pages;
templates/base.html is just this tag. See core/jinja_env.py for why."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser
from django.template import engines
from django.template.base import Node, NodeList, Parser, Token
from django.utils.safestring import SafeString, mark_safe

# Every mark_safe here wraps the output of a template engine that escapes what it inserts
# (Django's, or Jinja2 with autoescape on), never raw input.

register = template.Library()


class LayoutNode(Node):
    # Named here so `{% block %}`s inside are found by `{% extends %}`.
    child_nodelists = ("title", "content")

    def __init__(self, title: NodeList, content: NodeList) -> None:
        self.title, self.content = title, content

    def render(self, context: Any) -> SafeString:
        request = context.get("request")
        page: dict[str, Any] = {
            "title": mark_safe(self.title.render(context).strip()),  # noqa: S308
            "content": mark_safe(self.content.render(context)),  # noqa: S308
        }
        if request is None:  # the 500 page: drawn as for a visitor
            page["user"] = AnonymousUser()
        # With a request, the Jinja2 engine runs the same context processors (user, perms,
        # messages, role) as the Django one did.
        template = engines["jinja2"].get_template("layout.html")
        return mark_safe(template.render(page, request))  # noqa: S308


@register.tag
def layout(parser: Parser, token: Token) -> LayoutNode:
    title = parser.parse(("content",))
    parser.delete_first_token()
    content = parser.parse(("endlayout",))
    parser.delete_first_token()
    return LayoutNode(title, content)


@register.simple_tag(takes_context=True)
def jinja(context: Any, name: str, **values: Any) -> SafeString:
    """`{% jinja "includes/pagination.html" page=page %}`: a piece written once in Jinja2
    for both kinds of page, drawn with just the values named."""
    template = engines["jinja2"].get_template(name)
    return mark_safe(template.render(values, context.get("request")))  # noqa: S308
