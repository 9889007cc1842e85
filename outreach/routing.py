"""Ordering a day's visits into a sensible driving route, offline.

Distances are straight lines between ZIP-code centroids (registry.geo, from the offline
`zipcodes` package), which is good to a mile or two: enough to stop a liaison criss-crossing town,
with no map service and no patient or partner data leaving the server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from registry import geo
from registry.geo import zip_centroid

__all__ = ["Stop", "haversine_miles", "nearest_neighbour_route", "zip_centroid"]

T = TypeVar("T")


def haversine_miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle miles between two (latitude, longitude) points (registry.geo's)."""
    return geo.haversine_miles(*a, *b)


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
