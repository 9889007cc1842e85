"""The Content-Security-Policy's report receiver (core.csp): a refusal is logged with
nothing that could carry someone's data, bad bodies are refused with a reason, and a
flood is cut off."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse

from core import csp

URL = reverse("core:csp_report")


@pytest.fixture(autouse=True)
def _fresh_budget() -> None:
    caches["api-throttle"].delete(csp.budget_key("127.0.0.1"))


def send(body: Any, client: Client | None = None) -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return (client or Client()).post(URL, data, content_type="application/csp-report")


def report(**fields: Any) -> dict[str, Any]:
    return {
        "csp-report": {
            "document-uri": "https://crm.example.org/referrals/?q=Olsen&status=received#top",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "blocked-uri": "https://cdn.example.com/lib.js?patient=Ruth",
            **fields,
        }
    }


def logged(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "referral_crm.csp"]


def test_a_refusal_is_logged_without_query_strings_or_fragments(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        response = send(report())

    assert response.status_code == 204
    assert logged(caplog) == [
        "Content-Security-Policy refused script-src-elem from https://cdn.example.com "
        "on /referrals/"
    ]
    assert "Olsen" not in caplog.text and "Ruth" not in caplog.text


@pytest.mark.parametrize(
    ("blocked", "shown"),
    [
        ("inline", "inline"),
        ("eval", "eval"),
        ("data:text/html,<b>Ruth</b>", "data:"),
        ("", "unknown"),
    ],
)
def test_a_kind_of_source_is_named_and_a_data_address_is_not_copied(
    caplog: Any, blocked: str, shown: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        send(report(**{"blocked-uri": blocked}))

    assert logged(caplog)[0].split(" from ")[1].split(" on ")[0] == shown


@pytest.mark.parametrize(
    ("directive", "shown"),
    [
        ("script-src\n2026-12-04 00:00:00 ERROR django.request forged", "script-src"),
        ("script-src 'self' https://cdn.example.com", "script-src"),
        ("Ruth Olsen", "unknown"),
        ("olsen", "unknown"),
        ("\x1b[31mimg-src", "unknown"),
    ],
)
def test_the_directive_is_logged_as_a_name_only_so_a_report_cannot_forge_log_lines(
    caplog: Any, directive: str, shown: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        send(report(**{"effective-directive": directive, "violated-directive": directive}))

    assert logged(caplog) == [
        f"Content-Security-Policy refused {shown} from https://cdn.example.com on /referrals/"
    ]


def test_addresses_are_logged_without_characters_that_break_or_colour_a_log_line(
    caplog: Any,
) -> None:
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        send(
            report(
                **{
                    "document-uri": "https://crm.example.org/a\x0bb\u2028c\x1b[31m/d",
                    "blocked-uri": "https://cdn\x0c.example.com\x85/lib.js",
                }
            )
        )

    assert logged(caplog) == [
        "Content-Security-Policy refused script-src-elem from https://cdn.example.com on /abc[31m/d"
    ]


def test_an_address_that_is_no_url_is_logged_as_unknown_not_a_server_error(
    caplog: Any,
) -> None:
    """An unclosed IPv6 bracket makes the URL parser raise: the report is still taken."""
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        response = send(
            report(
                **{
                    "document-uri": "https://[crm.example.org/referrals/?q=Olsen",
                    "blocked-uri": "https://[cdn.example.com/lib.js",
                }
            ),
            client,
        )

    assert response.status_code == 204
    assert logged(caplog) == [
        "Content-Security-Policy refused script-src-elem from unknown on unknown"
    ]


def test_a_signed_in_user_owing_a_second_factor_still_gets_the_report_through(
    client_for: Any, manager: Any, settings: Any, caplog: Any
) -> None:
    settings.TWO_FACTOR_REQUIRED = True
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        response = send(report(), client_for(manager))

    assert response.status_code == 204 and len(logged(caplog)) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("not json", 400, "A report is a JSON object."),
        ([1, 2], 400, 'A report is a JSON object with a "csp-report".'),
        ({"csp-report": "x"}, 400, 'A report is a JSON object with a "csp-report".'),
        (b"\xff\xfe", 400, "A report is a JSON object."),
        # Nested deeper than the JSON parser's stack goes, well within the size allowed.
        ("[" * 3000 + "]" * 3000, 400, "A report is a JSON object."),
        ("x" * (csp.MAX_REPORT_BYTES + 1), 413, "A report is at most 8192 bytes."),
    ],
)
def test_a_bad_report_is_refused_with_the_reason_and_not_logged(
    caplog: Any, body: Any, status: int, error: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        response = send(body)

    assert (response.status_code, response.json()) == (status, {"error": error})
    assert logged(caplog) == []


def test_only_posts_are_taken() -> None:
    assert Client().get(URL).status_code == 405


def test_a_flood_of_reports_is_cut_off_after_the_budget(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        answers = [send(report()).status_code for _ in range(csp.REPORTS_PER_MINUTE + 3)]

    assert answers == [204] * csp.REPORTS_PER_MINUTE + [429] * 3
    assert len(logged(caplog)) == csp.REPORTS_PER_MINUTE
