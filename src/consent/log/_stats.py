"""Consent rates per category per day, computed from a stream of rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ._model import Row

__all__ = ["DayStats", "StatsCollector"]


@dataclass(slots=True)
class DayStats:
    """Decisions of one UTC day: how often each category was granted or denied.

    Every record counts, withdrawals included (they deny), so a visitor who
    changes their mind twice counts twice: this measures decisions, not people.
    """

    day: str
    decisions: int = 0
    granted: Counter[str] = field(default_factory=Counter)
    denied: Counter[str] = field(default_factory=Counter)

    def rate(self, category: str) -> float | None:
        """Share of the day's decisions about ``category`` that granted it."""
        g, d = self.granted[category], self.denied[category]
        return g / (g + d) if g + d else None


class StatsCollector:
    """Feed rows in any order; memory grows with days x categories only."""

    def __init__(self) -> None:
        self._days: dict[str, DayStats] = {}
        self.categories: set[str] = set()

    def add(self, rows: Iterable[Row]) -> None:
        days = self._days
        for row in rows:
            day = row[1][:10]
            stats = days.get(day)
            if stats is None:
                stats = days[day] = DayStats(day)
            stats.decisions += 1
            if row[5]:
                keys = row[5].split(",")
                stats.granted.update(keys)
                self.categories.update(keys)
            if row[6]:
                keys = row[6].split(",")
                stats.denied.update(keys)
                self.categories.update(keys)

    def result(self) -> list[DayStats]:
        return [self._days[d] for d in sorted(self._days)]
