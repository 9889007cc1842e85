"""ZIP centroids (offline, from the `zipcodes` package) and distances on the Earth."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import zipcodes
from django.conf import settings

EARTH_RADIUS_MILES = 3958.8
MILES_PER_DEGREE_LAT = 69.05


# Run in a child process: listing the package's ZIPs materialises all 42,000 full records
# (~140 MB of Python objects), memory a web or import process would keep for good.
_BUILD = """
import json, zipcodes
table = {}
for record in zipcodes.list_all():
    lat, lng = float(record["lat"]), float(record["long"])
    # Military and some unique ZIPs carry 0,0: no place, so no distance.
    if lat or lng:
        table[record["zip_code"]] = [lat, lng]
print(json.dumps(table))
"""


@cache
def _centroids() -> dict[str, tuple[float, float]]:
    """ZIP → (latitude, longitude): about 1 MB on disk under var/, built once per version of
    the zipcodes package."""
    path = Path(settings.VAR_DIR) / "cache" / f"zip-centroids-{zipcodes.__version__}.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        built = subprocess.run(  # noqa: S603 (a fixed script, no outside input)
            [sys.executable, "-c", _BUILD], capture_output=True, text=True, check=True
        )
        raw = json.loads(built.stdout)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(built.stdout)
        partial.replace(path)  # atomic: another process never reads half a file
    return {code: (lat, lng) for code, (lat, lng) in raw.items()}


def zip5(postal_code: str) -> str:
    """The five-digit ZIP of a US postal code written as 5 or 9 digits (with or without the
    hyphen, and with the leading zeros a spreadsheet may have dropped); "" otherwise."""
    digits = postal_code.replace("-", "").strip()
    if not digits.isdigit() or not digits.isascii():
        return ""
    if len(digits) <= 5:
        return digits.zfill(5) if len(digits) >= 3 else ""
    if len(digits) <= 9:
        return digits.zfill(9)[:5]
    return ""


def zip_centroid(postal_code: str) -> tuple[float, float] | None:
    return _centroids().get(zip5(postal_code))


def haversine_miles(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lng: float, miles: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lng, max_lng) of a box that contains the circle."""
    dlat = miles / MILES_PER_DEGREE_LAT
    # Longitude degrees shrink towards the poles; clamp so the box never degenerates.
    dlng = miles / (MILES_PER_DEGREE_LAT * max(0.01, math.cos(math.radians(lat))))
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng
