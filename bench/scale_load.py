"""The scale harness's data: a realistic network of partners, referrals with their history
and liaison activities, generated in Python and streamed to Postgres with COPY."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from tqdm import tqdm

from bench.scale_data import (
    ACTIVITY_KINDS,
    CANCEL_REASONS,
    CITIES,
    CREDENTIALS,
    FINISHED_PATHS,
    FIRST_NAMES,
    LAST_NAMES,
    NEXT_STEPS,
    NULL,
    OPEN_PATHS,
    OPEN_WINDOW,
    OUT_OF_NETWORK_REASONS,
    REASONS,
    SPECIALTIES,
    YEARS,
    Scale,
    npi_with_check_digit,
    ts,
)

OTHER_SOURCES = ["web", "advertising", "insurance_directory", "self", "other"]


def _inquiry(
    pk: int,
    path: tuple[str, ...] | list[str],
    received: datetime,
    scheduled_at: datetime | None,
    seen: datetime | None,
    last: datetime,
) -> list[str]:
    """An inbound referral's inquiry row (without its id): where its funnel stands."""
    if seen is not None:
        status, lost_at = "seen_new_patient", None
    elif path[-1] in ("declined", "cancelled", "closed"):
        status, lost_at = "lost", last
    elif scheduled_at is not None:
        status, lost_at = "scheduled", None
    else:
        status, lost_at = "inquiry", None
    missed = path[-1] == "closed" and "no_show" in path and seen is None
    return [
        "partner_referral",
        status,
        str(pk),
        ts(received),
        ts(scheduled_at) if scheduled_at else NULL,
        ts(seen) if seen else NULL,
        ts(lost_at) if lost_at else NULL,
        "t" if missed else "f",
    ]


class Loader:
    """Generates rows and streams them to Postgres with COPY, in chunks."""

    def __init__(self, conn: psycopg.Connection, users: dict[str, Any], seed: int = 5) -> None:
        self.conn = conn
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: left on, each COPY's
        # commit would run one trigger per row and key (minutes for the history table).
        # The rows are consistent by construction, so the checks are skipped for the load.
        conn.execute("SET session_replication_role = replica")
        conn.commit()
        self.users = users
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - timedelta(days=365 * YEARS)
        self.provider_ids: list[int] = []
        self.provider_org: dict[int, int] = {}
        self.cum_weights: list[float] = []

    def copy(self, table: str, columns: list[str], rows: Iterator[list[str]], total: int) -> None:
        self._default_unlisted_columns(table, columns)
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            buffer: list[str] = []
            with tqdm(total=total, desc=table, unit=" rows", unit_scale=True) as bar:
                for row in rows:
                    buffer.append("\t".join(row))
                    if len(buffer) == 20_000:
                        copy.write("\n".join(buffer) + "\n")
                        bar.update(len(buffer))
                        buffer.clear()
                if buffer:
                    copy.write("\n".join(buffer) + "\n")
                    bar.update(len(buffer))
        self.conn.commit()

    def _default_unlisted_columns(self, table: str, columns: list[str]) -> None:
        """Columns other features add later (NOT NULL, defaulted in Django only) get a
        database default for the load, so the harness keeps working as the schema grows."""
        zero_by_type = {
            "character varying": "''",
            "text": "''",
            "boolean": "false",
            "integer": "0",
            "bigint": "0",
            "smallint": "0",
            "numeric": "0",
            "timestamp with time zone": "now()",
            "date": "current_date",
            "jsonb": "'{}'",
        }
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL",
                [table],
            )
            for name, data_type in cur.fetchall():
                if name not in columns and data_type in zero_by_type:
                    cur.execute(
                        f'ALTER TABLE {table} ALTER COLUMN "{name}" '
                        f"SET DEFAULT {zero_by_type[data_type]}"
                    )

    def next_id(self, table: str) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
            row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def reset_sequences(self, tables: list[str]) -> None:
        with self.conn.cursor() as cur:
            for table in tables:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce(max(id), 1)) FROM {table}"
                )
        self.conn.commit()

    # --- partners ------------------------------------------------------------------------

    def load_partners(self, scale: Scale) -> None:
        rng = self.rng
        created = ts(self.start)

        def organizations() -> Iterator[list[str]]:
            for i in range(scale.organizations):
                city, state, zip3 = rng.choice(CITIES)
                yield [
                    str(i + 1),
                    f"{rng.choice(LAST_NAMES)} {rng.choice(['Family Clinic', 'Medical Group', 'Health', 'Primary Care'])} {i}",
                    f"{rng.randint(100, 9999)} {rng.choice(LAST_NAMES)} St",
                    "",
                    city,
                    state,
                    f"{zip3}{rng.randint(0, 99):02d}",
                    "",
                    f"(402) 555-{rng.randint(0, 9999):04d}",
                    f"(402) 555-{rng.randint(0, 9999):04d}",
                    "",
                    "",
                    created,
                    created,
                ]

        self.copy(
            "partners_organization",
            [
                "id",
                "name",
                "address_line1",
                "address_line2",
                "city",
                "state",
                "zip_code",
                "npi",
                "phone",
                "fax",
                "email",
                "notes",
                "created_at",
                "updated_at",
            ],
            organizations(),
            scale.organizations,
        )
        liaisons = self.users["liaisons"]
        tiers = ["A"] * 5 + ["B"] * 15 + ["C"] * 30 + [""] * 50
        statuses = ["active"] * 60 + ["prospect"] * 30 + ["dormant"] * 10

        def providers() -> Iterator[list[str]]:
            for i in range(scale.partners):
                pk = i + 1
                org = rng.randint(1, scale.organizations)
                self.provider_org[pk] = org
                code, specialty = rng.choice(SPECIALTIES)
                yield [
                    str(pk),
                    npi_with_check_digit(100_000_000 + pk * 7),
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    rng.choice(CREDENTIALS),
                    code,
                    specialty,
                    "",
                    "",
                    rng.choice(statuses),
                    rng.choice(tiers),
                    "",
                    created,
                    created,
                    str(org),
                    str(rng.choice(liaisons)),
                    # A quarter of the partners are the preferred network's specialists.
                    "t" if pk % 4 == 0 else "f",
                ]

        self.copy(
            "partners_provider",
            [
                "id",
                "npi",
                "first_name",
                "last_name",
                "credential",
                "taxonomy_code",
                "specialty",
                "phone",
                "email",
                "status",
                "tier",
                "notes",
                "created_at",
                "updated_at",
                "organization_id",
                "owner_id",
                "in_network",
            ],
            providers(),
            scale.partners,
        )
        self.provider_ids = list(range(1, scale.partners + 1))
        # Referral volume follows a Pareto curve (80/20 with alpha ≈ 1.16), capped so the
        # busiest partner sends a few percent of everything, as in real practices.
        weights = [min(rng.paretovariate(1.16), 400.0) for _ in self.provider_ids]
        running = 0.0
        self.cum_weights = []
        for weight in weights:
            running += weight
            self.cum_weights.append(running)
        self.reset_sequences(["partners_organization", "partners_provider"])

    # --- referrals and their history --------------------------------------------------------

    def load_referrals(self, count: int) -> None:
        rng = self.rng
        first_id = self.next_id("referrals_referral")
        first_event = self.next_id("referrals_referralevent")
        coordinators = self.users["coordinators"]
        span = (self.now - self.start).total_seconds()
        events: list[list[str]] = []
        # Each inbound referral's inquiry at the referral's stage, as referral_log and
        # referral_transition keep it (the conversion report reads these).
        inquiries: list[list[str]] = []
        finished_weights = [w for w, _ in FINISHED_PATHS]
        open_weights = [w for w, _ in OPEN_PATHS]
        providers = rng.choices(self.provider_ids, cum_weights=self.cum_weights, k=count)

        def referrals() -> Iterator[list[str]]:
            event_id = first_event
            for n in range(count):
                pk = first_id + n
                # Volume grows over the years: the square root skews arrivals to recent ones.
                received = self.start + timedelta(seconds=span * rng.random() ** 0.8)
                is_open = self.now - received < OPEN_WINDOW
                path = rng.choices(
                    [p for _, p in (OPEN_PATHS if is_open else FINISHED_PATHS)],
                    weights=open_weights if is_open else finished_weights,
                )[0]
                urgency = rng.choices(["routine", "urgent", "stat"], weights=[80, 15, 5])[0]
                moment = received
                contacted = appointment = seen = closed = scheduled_at = None
                actor = rng.choice(coordinators)
                previous = ""
                for step in path:
                    if previous:
                        gap = timedelta(hours=rng.uniform(1, 72 if step != "seen" else 600))
                        moment = min(moment + gap, self.now)
                    if previous == "received" and contacted is None:
                        contacted = moment
                    if step == "scheduled":
                        appointment = moment + timedelta(days=rng.uniform(2, 40))
                        scheduled_at = scheduled_at or moment
                    elif step == "seen":
                        seen = moment
                    elif step == "closed":
                        closed = moment
                    events.append(
                        [
                            str(event_id),
                            previous,
                            step,
                            ts(moment),
                            "",
                            str(actor),
                            str(pk),
                        ]
                    )
                    event_id += 1
                    previous = step
                status = path[-1]
                dob = date(1930, 1, 1) + timedelta(days=rng.randint(0, 33_000))
                direction = "outbound" if rng.random() < 0.15 else "inbound"
                in_network, why_out = NULL, ""
                if direction == "inbound":
                    inquiries.append(_inquiry(pk, path, received, scheduled_at, seen, moment))
                # About one patient sent out in five leaves the preferred network (by id, not
                # by the generator, as the cancel reasons are).
                elif pk * 7919 % 100 < 78:
                    in_network = "t"
                else:
                    in_network = "f"
                    why_out = OUT_OF_NETWORK_REASONS[pk % len(OUT_OF_NETWORK_REASONS)]
                yield [
                    str(pk),
                    direction,
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    dob.isoformat(),
                    f"(402) 555-{rng.randint(0, 9999):04d}",
                    rng.choice(REASONS),
                    urgency,
                    rng.choice(["fax", "fax", "phone", "web_form", "e_referral"]),
                    status,
                    ts(received),
                    "Outside our scope of practice" if "declined" in path else "",
                    # By id, not by the generator: the rest of the data stays as it was.
                    CANCEL_REASONS[pk % len(CANCEL_REASONS)] if "cancelled" in path else "",
                    ts(appointment) if appointment else NULL,
                    ts(seen) if seen else NULL,
                    ts(closed) if closed else NULL,
                    ts(contacted) if contacted else NULL,
                    ts(received),
                    ts(moment),
                    str(actor) if not is_open or rng.random() < 0.8 else NULL,
                    NULL,
                    str(providers[n]),
                    in_network,
                    why_out,
                ]

        self.copy(
            "referrals_referral",
            [
                "id",
                "direction",
                "patient_first_name",
                "patient_last_name",
                "patient_dob",
                "patient_phone",
                "reason",
                "urgency",
                "channel",
                "status",
                "received_at",
                "decline_reason",
                "cancel_reason",
                "appointment_at",
                "seen_at",
                "closed_at",
                "contacted_at",
                "created_at",
                "updated_at",
                "assigned_to_id",
                "created_by_id",
                "provider_id",
                "in_network",
                "out_of_network_reason",
            ],
            referrals(),
            count,
        )
        self.copy(
            "referrals_referralevent",
            ["id", "from_status", "to_status", "at", "note", "actor_id", "referral_id"],
            iter(events),
            len(events),
        )
        first_inquiry = self.next_id("referrals_inquiry")
        # And the front desk's inquiries from every other source, about one for every five
        # referrals, converting less well.
        for _ in range(count // 5):
            received = self.start + timedelta(seconds=span * rng.random() ** 0.8)
            stage = rng.choices(["inquiry", "scheduled", "seen", "lost"], [10, 10, 35, 45])[0]
            booked = received + timedelta(days=rng.uniform(1, 10))
            inquiries.append(
                [
                    rng.choice(OTHER_SOURCES),
                    "seen_new_patient" if stage == "seen" else stage,
                    NULL,
                    ts(received),
                    ts(booked) if stage in ("scheduled", "seen") else NULL,
                    ts(booked + timedelta(days=14)) if stage == "seen" else NULL,
                    ts(booked) if stage == "lost" else NULL,
                    "f",
                ]
            )
        self.copy(
            "referrals_inquiry",
            [
                "id",
                "source",
                "status",
                "referral_id",
                "received_at",
                "scheduled_at",
                "seen_at",
                "lost_at",
                "missed_visit",
            ],
            ([str(first_inquiry + n), *row] for n, row in enumerate(inquiries)),
            len(inquiries),
        )
        self.reset_sequences(["referrals_referral", "referrals_referralevent", "referrals_inquiry"])

    def load_activities(self, count: int) -> None:
        rng = self.rng
        first_id = self.next_id("outreach_activity")
        first_link = self.next_id("outreach_activity_providers")
        span = (self.now - self.start).total_seconds()
        links: list[list[str]] = []
        liaisons = self.users["liaisons"]

        def activities() -> Iterator[list[str]]:
            link_id = first_link
            for n in range(count):
                pk = first_id + n
                provider = rng.choice(self.provider_ids)
                at = self.start + timedelta(seconds=span * rng.random())
                links.append([str(link_id), str(pk), str(provider)])
                link_id += 1
                step = rng.choice(NEXT_STEPS)
                yield [
                    str(pk),
                    rng.choice(ACTIVITY_KINDS),
                    ts(at),
                    "Met the office manager; referral pad restocked.",
                    step,
                    (at.date() + timedelta(days=14)).isoformat() if step else NULL,
                    ts(at),
                    str(rng.choice(liaisons)),
                    str(self.provider_org[provider]),
                ]

        self.copy(
            "outreach_activity",
            [
                "id",
                "kind",
                "occurred_at",
                "notes",
                "next_step",
                "next_step_due",
                "created_at",
                "logged_by_id",
                "organization_id",
            ],
            activities(),
            count,
        )
        self.copy(
            "outreach_activity_providers",
            ["id", "activity_id", "provider_id"],
            iter(links),
            len(links),
        )
        self.reset_sequences(["outreach_activity", "outreach_activity_providers"])

    def analyze(self) -> None:
        # VACUUM as well: freshly copied pages are not yet marked all-visible, which would
        # keep index-only scans from being index-only (autovacuum does it in production).
        self.conn.commit()
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        self.conn.autocommit = False
