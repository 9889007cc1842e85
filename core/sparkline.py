"""Geometry for the small server-rendered SVG bar charts (no JavaScript chart library):
the template draws one <rect> per value from these numbers."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 240
HEIGHT = 48
GAP = 2


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Sparkline:
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)

    @property
    def peak(self) -> int:
        return max((bar.value for bar in self.bars), default=0)


def sparkline(points: list[tuple[str, int]]) -> Sparkline:
    """Bars scaled to the largest value; a zero still shows as a one-pixel baseline so an
    empty month reads as "none" rather than "missing"."""
    if not points:
        return Sparkline(bars=[])
    peak = max(value for _, value in points) or 1
    slot = WIDTH / len(points)
    bars = []
    for index, (label, value) in enumerate(points):
        height = max(1.0, round(value / peak * (HEIGHT - 2), 1))
        bars.append(
            Bar(
                label=label,
                value=value,
                x=round(index * slot + GAP / 2, 1),
                y=round(HEIGHT - height, 1),
                width=round(slot - GAP, 1),
                height=height,
            )
        )
    return Sparkline(bars=bars)
