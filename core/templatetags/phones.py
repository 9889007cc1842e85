from django import template

from core.phones import dial_link

register = template.Library()
register.filter("dial_link", dial_link)
