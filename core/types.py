"""The request types views are annotated with (django-stubs' pattern for request.user).

A view behind `login_required` (or LoginRequiredMixin) always has a signed-in `User`, but a
type checker sees `request.user` as `User | AnonymousUser`. Such views take `AuthedRequest`.
Views anyone may open (an office's intake link) keep `HttpRequest`, or `HtmxRequest` where
they read `request.htmx`, which HtmxMiddleware (settings.MIDDLEWARE) sets on every request.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class AuthedRequest(HtmxRequest):
    user: User
