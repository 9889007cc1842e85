"""Request budgets per API token, so one runaway script cannot starve the others (or the
practice's own pages) of the database."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches
from knox.models import AuthToken
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)

# The cache the counts live in: Redis when REDIS_URL is set, so every web process counts
# against the same budget (settings.CACHES).
THROTTLE_CACHE = "api-throttle"


class TokenRateThrottle(ScopedRateThrottle):
    """The view's `throttle_scope` rate (settings REST_FRAMEWORK's DEFAULT_THROTTLE_RATES),
    counted per token: each integration has its own budget, even two acting as one user."""

    cache = caches[THROTTLE_CACHE]

    def get_cache_key(self, request: Request, view: Any) -> str:
        token = request.auth
        # The stored digest, never the token itself; a request without one is counted by
        # address (it is refused as unauthenticated before this runs anyway).
        ident = token.digest if isinstance(token, AuthToken) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError:
            # The budget guards against floods; with its cache down, answering is better
            # than refusing every integration until Redis is back.
            logger.warning("API throttle skipped: its cache (Redis) is unavailable.")
            return True
