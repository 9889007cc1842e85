"""The Django side of the scale harness, run in a child process whose DATABASE_URL points at
the benchmark database (the parent must not touch the developer's own database).

    python -m bench.scale_django users      → creates the bench users, prints their ids
    python -m bench.scale_django pages      → prints the pages to measure, a session cookie
                                              and each page's query count
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

LIAISONS = 20
COORDINATORS = 5


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_crm.settings")
    import django

    django.setup()


def users() -> dict[str, Any]:
    from core.factories import UserFactory
    from core.roles import Role, sync_roles

    sync_roles()
    manager = UserFactory(username="bench_manager", role=Role.MANAGER)
    liaisons = [
        UserFactory(username=f"bench_liaison{i}", role=Role.LIAISON) for i in range(LIAISONS)
    ]
    coordinators = [
        UserFactory(username=f"bench_coordinator{i}", role=Role.COORDINATOR)
        for i in range(COORDINATORS)
    ]
    return {
        "manager": manager.pk,
        "liaisons": [u.pk for u in liaisons],
        "coordinators": [u.pk for u in coordinators],
    }


def pages() -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from accounts.twofactor import mark_verified
    from partners.models import Provider
    from referrals.models import Referral

    manager = get_user_model().objects.get(username="bench_manager")
    busiest = (
        Referral.objects.order_by()
        .values("provider")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("provider", flat=True)[:1]
        .get()
    )
    typical = Provider.objects.order_by("?").values_list("pk", flat=True)[:1].get()
    newest = Referral.objects.order_by("-pk").values_list("pk", flat=True)[:1].get()
    urls = {
        "dashboard": reverse("core:dashboard"),
        "work queue": reverse("referrals:list"),
        "partner list": reverse("partners:provider_list"),
        "partner 360 (busiest)": reverse("partners:provider_detail", args=[busiest]),
        "partner 360 (typical)": reverse("partners:provider_detail", args=[typical]),
        "referral detail": reverse("referrals:detail", args=[newest // 2]),
    }
    # The manager's reports as they open (the last twelve months): measured one at a time
    # beside the pages, not in the throughput mix (a report is opened now and then, not
    # clicked through all day).
    reports = {
        "reciprocity report": reverse("referrals:reciprocity"),
        "leakage report": reverse("referrals:leakage"),
        "conversion report": reverse("referrals:conversion"),
        "turnaround report": reverse("referrals:turnaround"),
        "who refers report": reverse("referrals:referrers"),
        "outreach and referrals report": reverse("outreach:lift"),
    }
    # Signed in with both factors, as a manager must be (TWO_FACTOR_REQUIRED is on here).
    client = Client()
    client.force_login(manager)
    signed_in = client.session
    mark_verified(signed_in, manager)
    signed_in.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = signed_in.session_key
    counts = {}
    for name, url in {**urls, **reports}.items():
        client.get(url)  # warm caches (content types, permissions) as a live worker has them
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{name} answered {response.status_code}")
        counts[name] = len(queries.captured_queries)
    # A real session for the HTTP client, as a browser would hold after signing in.
    session = SessionStore()
    session["_auth_user_id"] = str(manager.pk)
    session["_auth_user_backend"] = "core.auth.AccessBackend"
    session["_auth_user_hash"] = manager.get_session_auth_hash()
    session.create()
    mark_verified(session, manager)
    session.save()
    return {"urls": urls, "reports": reports, "queries": counts, "session": session.session_key}


if __name__ == "__main__":
    _setup()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "users":
        print(json.dumps(users()))
    elif command == "pages":
        print(json.dumps(pages()))
    else:
        raise SystemExit(__doc__)
