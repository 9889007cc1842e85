"""Ordering a day's visits into a sensible driving route, offline.

Distances are straight lines between ZIP-code centroids (the `zipcodes` package ships
them), which is good to a mile or two: enough to stop a liaison criss-crossing town,
with no map service and no patient or partner data leaving the server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Generic, TypeVar

import zipcodes

EARTH_RADIUS_MILES = 3958.8

T = TypeVar("T")


@cache
def zip_centroid(zip_code: str) -> tuple[float, float] | None:
    """Latitude and longitude of a 5-digit ZIP (ZIP+4 accepted), or None when unknown."""
    five = (zip_code or "").strip()[:5]
    if len(five) != 5 or not five.isdigit():
        return None
    try:
        matches = zipcodes.matching(five)
    except (TypeError, ValueError):
        return None
    if not matches:
        return None
    return float(matches[0]["lat"]), float(matches[0]["long"])


def haversine_miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Stop(Generic[T]):
    item: T
    miles_from_previous: float | None  # None: no usable ZIP, so placed at the end


def nearest_neighbour_route(
    items: Sequence[T], zip_of: Callable[[T], str], *, start_zip: str = ""
) -> list[Stop[T]]:
    """Order `items` by repeatedly driving to the closest unvisited one, starting at
    `start_zip` (or at the first locatable item). Items without a usable ZIP keep their
    relative order and go last. Nearest-neighbour is not optimal, but with the handful
    of stops in a day it is within a few miles of it and easy to explain."""
    located: list[tuple[T, tuple[float, float]]] = []
    unlocated: list[T] = []
    for item in items:
        point = zip_centroid(zip_of(item))
        if point is None:
            unlocated.append(item)
        else:
            located.append((item, point))
    route: list[Stop[T]] = []
    here = zip_centroid(start_zip) if start_zip else None
    while located:
        if here is None:
            index, miles = 0, None
        else:
            index, miles = min(
                ((i, haversine_miles(here, point)) for i, (_, point) in enumerate(located)),
                key=lambda pair: pair[1],
            )
        item, here = located.pop(index)
        route.append(Stop(item, round(miles, 1) if miles is not None else 0.0))
    route.extend(Stop(item, None) for item in unlocated)
    return route
