"""Where browsers report what the Content-Security-Policy refused (its report-uri), so a
refusal in production is seen in the logs instead of leaving a page quietly broken.

The receiver takes no account and no CSRF token (browsers send reports on their own), so it
trusts nothing in them: it reads a small JSON body, logs only the directive, the blocked
source's scheme and host and the page's path (never a query string, which may hold what
someone searched for, such as a patient's name), and budgets reports per address."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from core.client_ip import client_ip

logger = logging.getLogger("referral_crm.csp")

MAX_REPORT_BYTES = 8 * 1024
# Reports logged per address and minute; past it they are answered 429 and not logged, so
# a page refused in a loop (or a visitor posting junk) cannot flood the log.
REPORTS_PER_MINUTE = 30
# The directives a report can name (CSP Level 3). A report's directive is logged only as
# one of these: the text is the sender's, and a line break in it would forge log lines.
DIRECTIVES = frozenset(
    {
        "base-uri",
        "child-src",
        "connect-src",
        "default-src",
        "fenced-frame-src",
        "font-src",
        "form-action",
        "frame-ancestors",
        "frame-src",
        "img-src",
        "manifest-src",
        "media-src",
        "object-src",
        "prefetch-src",
        "require-trusted-types-for",
        "sandbox",
        "script-src",
        "script-src-attr",
        "script-src-elem",
        "style-src",
        "style-src-attr",
        "style-src-elem",
        "trusted-types",
        "webrtc",
        "worker-src",
    }
)
# Values of blocked-uri that name a kind of source rather than an address.
SOURCE_KEYWORDS = {"inline", "eval", "wasm-eval", "data", "blob", "self", "trusted-types-policy"}


def _printable(value: Any) -> str:
    """The text without control characters or line separators, which would break a log
    line in two (a forged line) or colour a terminal."""
    return "".join(char for char in str(value or "")[:500] if char.isprintable())


def _split(text: str) -> SplitResult | None:
    """The parts of a URL, or None for text the parser refuses (an unclosed IPv6 "[")."""
    try:
        return urlsplit(text)
    except ValueError:
        return None


def _where(uri: Any) -> str:
    """A reported address without what could carry someone's data: a keyword as it is, a
    URL as its scheme and host (and, for our own pages, the path)."""
    text = _printable(uri)
    if text in SOURCE_KEYWORDS or not text:
        return text or "unknown"
    parts = _split(text)
    if parts is None or not parts.scheme:
        return "unknown"
    if parts.scheme in {"data", "blob"}:
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{parts.netloc}"


def _directive(value: Any) -> str:
    """The directive's name: older browsers send the whole directive, sources and all."""
    words = str(value or "")[:200].split(maxsplit=1)
    return words[0] if words and words[0] in DIRECTIVES else "unknown"


def _page(uri: Any) -> str:
    parts = _split(_printable(uri))
    return (parts.path[:200] if parts else "") or "unknown"


def budget_key(address: str) -> str:
    """The cache key counting one address's reports this minute."""
    return f"csp-report:{address}"


def _over_budget(request: HttpRequest) -> bool:
    cache = caches["api-throttle"]
    # Each client its own budget, behind the practice's proxies too (core.client_ip).
    key = budget_key(client_ip(request) or "")
    try:
        cache.add(key, 0, timeout=60)
        return cache.incr(key) > REPORTS_PER_MINUTE
    except RedisError:
        # The budget guards the log against floods; with Redis down, log the report.
        return False


@csrf_exempt
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    if len(request.body) > MAX_REPORT_BYTES:
        return JsonResponse({"error": f"A report is at most {MAX_REPORT_BYTES} bytes."}, status=413)
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: arrays or objects nested deeper than the parser's stack.
        return JsonResponse({"error": "A report is a JSON object."}, status=400)
    report = body.get("csp-report") if isinstance(body, dict) else None
    if not isinstance(report, dict):
        return JsonResponse({"error": 'A report is a JSON object with a "csp-report".'}, status=400)
    if _over_budget(request):
        return JsonResponse({"error": "Too many reports; try again in a minute."}, status=429)
    directive = report.get("effective-directive") or report.get("violated-directive") or ""
    logger.warning(
        "Content-Security-Policy refused %s from %s on %s",
        _directive(directive),
        _where(report.get("blocked-uri")),
        _page(report.get("document-uri")),
    )
    return HttpResponse(status=204)
