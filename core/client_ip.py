"""The address a request came from, as the audit trail and the budgets record it.

Behind a reverse proxy or load balancer REMOTE_ADDR is the proxy's, the same for every
request. X-Forwarded-For carries the client's, but a client may send one of its own: only
the entries the practice's own proxies appended can be believed. TRUSTED_PROXIES says how
many proxies stand in front of the app (0, the default, believes none): the client is the
entry that many places from the right, each trusted proxy having appended the address it
was reached from.
"""

from __future__ import annotations

from ipaddress import ip_address

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, or None when there is none to believe."""
    direct = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXIES
    if not proxies:
        return direct
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        # Not through all our proxies (a health check from inside, say): the peer is it.
        return direct
    candidate = forwarded[-proxies]
    try:
        return str(ip_address(candidate))
    except ValueError:
        return direct
