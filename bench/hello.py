"""A bare hello-world Django view, for the scale harness's yardstick.

The throughput target (300 views/s) was set against "a bare hello-world Django view under
gunicorn does about 7,000 here". Measuring that view with the same gunicorn and the same
client at each run tells how fast the machine is at that moment, which on a shared VM
varies from hour to hour. No middleware, no database, no templates.

    gunicorn bench.hello
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello, world")


urlpatterns = [path("", hello)]

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    # Nothing is signed: a throwaway key for this process only.
    SECRET_KEY=secrets.token_urlsafe(50),
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
application = get_wsgi_application()
