"""One measured row of the report: a path, its baseline, ours, the ratio and the goal."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Measurement:
    path: str
    case: str
    db: str
    unit: str
    ours: float
    baseline: float | None = None
    #: True for costs (ms, MiB), False for rates (req/s): the ratio is always "ours costs N x the baseline".
    lower_is_better: bool = True
    goal: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or self.ours == 0:
            return None
        return self.ours / self.baseline if self.lower_is_better else self.baseline / self.ours

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def within_ratio(m: Measurement, limit: float) -> Measurement:
    """Set the goal "ours within ``limit`` x the baseline" and whether it is met."""
    m.goal = f"<= {limit:g}x"
    ratio = m.ratio
    m.met = ratio is not None and ratio <= limit
    return m


def below(m: Measurement, limit: float, unit: str | None = None) -> Measurement:
    """Set an absolute goal: ours below ``limit``."""
    m.goal = f"< {limit:g} {unit or m.unit}"
    m.met = m.ours < limit
    return m


def info(m: Measurement) -> Measurement:
    """A row reported for context, with no goal of its own."""
    m.goal = m.goal or "-"
    m.met = None
    return m
