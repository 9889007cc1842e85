"""Content negotiation for the REST API: an unknown `format` is said, not a bare 404."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class SaysWhichFormats(DefaultContentNegotiation):
    def filter_renderers(self, renderers: Any, format: str) -> Any:
        found = [renderer for renderer in renderers if renderer.format == format]
        if not found:
            offered = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise NotAcceptable(
                f"format={format[:20]} is not offered: this API answers in {offered} "
                "(leave format out)."
            )
        return found
