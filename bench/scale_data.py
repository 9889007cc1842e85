"""What the scale harness's generated network looks like: its sizes, and the names,
specialties, reasons and paths a referral takes that its rows are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NULL = r"\N"


@dataclass(frozen=True)
class Scale:
    organizations: int
    partners: int
    # Referrals and activities at the first measurement, then at the second.
    referrals: tuple[int, int]
    activities: tuple[int, int]


FULL = Scale(
    organizations=5_000,
    partners=20_000,
    referrals=(10_000, 1_000_000),
    activities=(2_000, 200_000),
)
SMALL = Scale(organizations=500, partners=2_000, referrals=(2_000, 20_000), activities=(400, 4_000))

YEARS = 4
CANCEL_REASONS = [
    "We could not reach the patient after three calls and a letter.",
    "The patient chose to be seen closer to home.",
    "The patient's insurance does not cover the visit here.",
]
# Why a patient was sent outside the preferred network (the leakage report's reasons);
# the blank one is a referral whose reason nobody gave (imports, integrations).
OUT_OF_NETWORK_REASONS = [
    "Patient asked for this specialist by name.",
    "No in-network appointment within four weeks.",
    "Patient's insurance requires this group.",
    "Closer to the patient's home.",
    "",
]
FIRST_NAMES = [
    "Ruth",
    "James",
    "Maria",
    "Robert",
    "Linda",
    "Michael",
    "Patricia",
    "David",
    "Jennifer",
    "William",
    "Elizabeth",
    "Joseph",
    "Susan",
    "Thomas",
    "Jessica",
    "Charles",
    "Sarah",
    "Daniel",
    "Karen",
    "Matthew",
    "Nancy",
    "Anthony",
    "Lisa",
    "Mark",
    "Betty",
    "Donald",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Dorothy",
    "Andrew",
    "Kimberly",
    "Joshua",
    "Emily",
    "Kenneth",
    "Donna",
]
LAST_NAMES = [
    "Olsen",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
]
SPECIALTIES = [
    ("207Q00000X", "Family Medicine"),
    ("207R00000X", "Internal Medicine"),
    ("208000000X", "Pediatrics"),
    ("207V00000X", "Obstetrics & Gynecology"),
    ("207RC0000X", "Cardiovascular Disease"),
    ("207X00000X", "Orthopaedic Surgery"),
    ("2084N0400X", "Neurology"),
    ("207N00000X", "Dermatology"),
    ("363L00000X", "Nurse Practitioner"),
    ("363A00000X", "Physician Assistant"),
]
CREDENTIALS = ["MD", "MD", "MD", "DO", "NP", "PA-C"]
REASONS = [
    "Chronic knee pain, failed conservative therapy; evaluate for injection.",
    "New-onset atrial fibrillation; please evaluate and advise on anticoagulation.",
    "Uncontrolled type 2 diabetes despite two agents.",
    "Suspicious pigmented lesion on the back; evaluate for biopsy.",
    "Recurrent migraines, worsening over three months.",
    "Shoulder pain after fall; MRI shows partial rotator cuff tear.",
    "Low back pain with radiculopathy, six weeks.",
]
ACTIVITY_KINDS = ["visit", "visit", "drop_in", "call", "call", "lunch", "email", "meeting"]
NEXT_STEPS = ["Bring the new referral pad", "Lunch with the front desk", "Send outcome stats", ""]
CITIES = [("Omaha", "NE", "681"), ("Lincoln", "NE", "685"), ("Council Bluffs", "IA", "515")]

# Paths through the pipeline by final status: every step becomes one history row, and the
# shares roughly follow a specialty practice (most referrals seen and closed).
FINISHED_PATHS = [
    (70, ["received", "accepted", "scheduled", "seen", "report_sent", "closed"]),
    (10, ["received", "declined", "closed"]),
    (8, ["received", "accepted", "cancelled", "closed"]),
    (7, ["received", "accepted", "scheduled", "no_show", "closed"]),
    (5, ["received", "on_hold", "accepted", "scheduled", "seen", "report_sent", "closed"]),
]
OPEN_PATHS = [
    (30, ["received"]),
    (20, ["received", "accepted"]),
    (25, ["received", "accepted", "scheduled"]),
    (10, ["received", "accepted", "scheduled", "seen"]),
    (5, ["received", "accepted", "scheduled", "seen", "report_sent"]),
    (5, ["received", "on_hold"]),
    (5, ["received", "accepted", "scheduled", "no_show"]),
]
# Referrals younger than this are still being worked; older ones have finished.
OPEN_WINDOW = timedelta(days=60)


def npi_with_check_digit(base9: int) -> str:
    """A valid individual NPI: nine digits and the Luhn digit over 80840 + those digits."""
    digits = f"80840{base9:09d}"
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return f"{base9:09d}{(10 - total % 10) % 10}"


def ts(moment: datetime) -> str:
    return moment.isoformat()
