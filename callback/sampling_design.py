"""What a case campaign's sample is to be: period, strata, allocation, size or margin, seed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from callback.designs import (
    check_date,
    check_int,
    check_keys,
    check_period,
    check_share,
    check_zone,
    invalid,
)

STRATUM_VARIABLES = ("unit", "town", "month", "channel", "item")
ALLOCATIONS = ("proportional", "equal", "at-least")

#: A stratum: its variables and their values, e.g. (("unit", "区民政局"), ("month", "2018-07")).
StratumKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Exclusions:
    """Which cases are left out before the draw (each is counted in the sample report)."""

    #: Not called in any campaign within this many days before sampling; 0 turns it off.
    contact_gap_days: int = 30
    #: One citizen (telephone number) at most once per campaign.
    one_per_phone: bool = True

    def __post_init__(self) -> None:
        check_int(self.contact_gap_days, "exclusions.contact_gap_days", 0)
        if not isinstance(self.one_per_phone, bool):
            raise invalid(f"exclusions.one_per_phone must be true or false: {self.one_per_phone!r}")


@dataclass(frozen=True)
class SamplingDesign:
    """How a case campaign draws its sample.

    Either ``size`` (a total n, spread by ``allocation``) or ``margin`` (a margin of error for
    a proportion, which plans each unit's size; ``unit`` must then be a stratum variable).
    """

    period_start: date
    period_end: date
    seed: int
    strata: tuple[str, ...] = ("unit",)
    allocation: str = "proportional"
    size: int | None = None
    #: k of the "at-least" allocation: every stratum gets min(k, N_h) before the rest is spread.
    at_least: int | None = None
    margin: float | None = None
    confidence: float = 0.95
    #: The proportion the margin is planned for; 0.5 gives the largest (safest) sizes.
    proportion: float = 0.5
    exclusions: Exclusions = field(default_factory=Exclusions)
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strata", tuple(self.strata))
        check_period(self.period_start, self.period_end)
        check_int(self.seed, "seed")
        check_zone(self.timezone)
        for name in self.strata:
            if name not in STRATUM_VARIABLES:
                raise invalid(
                    f"unknown stratum variable {name!r}; choose from {', '.join(STRATUM_VARIABLES)}"
                )
        if len(set(self.strata)) != len(self.strata):
            raise invalid(f"a stratum variable is named twice: {', '.join(self.strata)}")
        if self.allocation not in ALLOCATIONS:
            raise invalid(
                f"unknown allocation {self.allocation!r}; choose from {', '.join(ALLOCATIONS)}"
            )
        if (self.size is None) == (self.margin is None):
            raise invalid("give either a sample size or a margin of error, not both or neither")
        if self.size is not None:
            check_int(self.size, "the sample size", 1)
        if self.allocation == "at-least":
            if self.at_least is None:
                raise invalid("allocation 'at-least' needs k, the least sample of each stratum")
            check_int(self.at_least, "at_least", 1)
        elif self.at_least is not None:
            raise invalid(
                f"at_least applies only to allocation 'at-least', not {self.allocation!r}"
            )
        check_share(self.confidence, "confidence")
        check_share(self.proportion, "proportion")
        if self.margin is not None:
            check_share(self.margin, "margin")
            if "unit" not in self.strata:
                raise invalid("a margin of error plans each unit's size: add 'unit' to the strata")
            if self.allocation != "proportional":
                raise invalid(
                    "a margin of error spreads each unit's size over its strata proportionally;"
                    f" allocation {self.allocation!r} does not apply"
                )

    @classmethod
    def summer(cls, year: int, seed: int, **options: Any) -> SamplingDesign:
        """Return a design for cases handled 1 June to 30 September of ``year`` (the default)."""
        return cls(date(year, 6, 1), date(year, 9, 30), seed, **options)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "timezone": self.timezone,
            "strata": list(self.strata),
            "allocation": self.allocation,
            "size": self.size,
            "at_least": self.at_least,
            "margin": self.margin,
            "confidence": self.confidence,
            "proportion": self.proportion,
            "exclusions": {
                "contact_gap_days": self.exclusions.contact_gap_days,
                "one_per_phone": self.exclusions.one_per_phone,
            },
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SamplingDesign:
        """Read a design written by ``to_json`` (or by hand); unknown keys are errors."""
        check_keys(data, _DESIGN_KEYS, "design")
        period = data.get("period")
        check_keys(period if period is not None else {}, ("start", "end"), "period")
        if period is None or "start" not in period or "end" not in period:
            raise invalid('the period is required: {"start": "2018-06-01", "end": "2018-09-30"}')
        if "seed" not in data:
            raise invalid("the seed is required, so that the sample can be drawn again")
        exclusions = data.get("exclusions", {})
        check_keys(exclusions, ("contact_gap_days", "one_per_phone"), "exclusions")
        strata = data.get("strata", ["unit"])
        if not isinstance(strata, list | tuple):
            raise invalid(f"strata must be a list of variables, not {strata!r}")
        options = {k: data[k] for k in _DESIGN_OPTIONS if k in data}
        return cls(
            check_date(period["start"], "period.start"),
            check_date(period["end"], "period.end"),
            data["seed"],
            strata=tuple(strata),
            exclusions=Exclusions(**exclusions),
            **options,
        )


_DESIGN_OPTIONS = (
    "allocation",
    "size",
    "at_least",
    "margin",
    "confidence",
    "proportion",
    "timezone",
)
_DESIGN_KEYS = ("period", "strata", "exclusions", "seed", *_DESIGN_OPTIONS)
