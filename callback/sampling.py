"""The seeded draw of a case campaign's sample: one case per number, then n_h per stratum (pure).

Nothing here reads the database or the clock: campaign_draws.py fetches the frame and writes the
sample, this module decides, with the design from callback.sampling_design, the exclusions from
callback.screening and the sizes from callback.allocation (spot checks: callback.spotchecks).
docs/sampling.md explains the statistics and cites the sources.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, filterfalse
from operator import itemgetter

from callback.allocation import plan_sizes
from callback.sampling_design import SamplingDesign, StratumKey

#: queue_items.stratum is VARCHAR(300); longer labels are shortened with a hash (see label).
MAX_LABEL = 300


def label(key: StratumKey) -> str:
    """Return the readable name of a stratum, e.g. ``unit=区民政局|month=2018-07``.

    An unstratified design has the one stratum ``all``. A label longer than the queue's column
    is cut and ends with a hash of the whole, so that it stays unique.
    """
    text = "|".join(f"{name}={value}" for name, value in key) or "all"
    if len(text) <= MAX_LABEL:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=5).hexdigest()
    return f"{text[: MAX_LABEL - 12]}…#{digest}"


def stratum_rng(seed: int, key: StratumKey) -> random.Random:
    """The generator of one stratum's draw: seeded from the campaign seed and the stratum.

    A string seed goes through SHA-512 (random.seed, version 2), so it is the same in every
    process and on every platform, unaffected by PYTHONHASHSEED.
    """
    return random.Random(f"{seed}/{label(key)}")


def choose_representatives(
    groups: Iterable[Sequence[int]], seed: int
) -> tuple[dict[int, int], set[int]]:
    """Keep one case of each group of cases that share a telephone number, chosen at random.

    Returns the chosen cases with their group size k (each was chosen with probability 1/k)
    and the set of cases left out. Groups are put in a canonical order (members sorted, groups
    by their smallest member) before one generator walks them, so the choice depends on the
    seed and on the groups only, not on the order they came in.
    """
    canonical = [sorted(group) for group in groups if len(group) > 1]
    canonical.sort(key=itemgetter(0))  # groups are disjoint: their smallest members differ
    # floor(U·k) with U from random(), the one method whose stream Python promises to keep
    # across versions; its bias is below 2**-53 per member.
    uniform = random.Random(f"{seed}/one-per-phone").random
    chosen = {members[int(uniform() * len(members))]: len(members) for members in canonical}
    dropped = set(chain.from_iterable(canonical)).difference(chosen)
    return chosen, dropped


def draw(
    population: Mapping[StratumKey, Iterable[int]], sizes: Mapping[StratumKey, int], seed: int
) -> dict[StratumKey, list[int]]:
    """Draw n_h cases from each stratum by simple random sampling without replacement.

    Each stratum's case ids are sorted, then ``random.sample`` picks n_h of them with the
    stratum's own generator: the same ids, size and seed always give the same cases, however
    the frame was ordered, and one stratum's draw never depends on another's.
    """
    drawn: dict[StratumKey, list[int]] = {}
    for key, ids in population.items():
        ordered = sorted(ids)
        n = sizes.get(key, 0)
        if n >= len(ordered):
            drawn[key] = ordered
        else:
            drawn[key] = sorted(stratum_rng(seed, key).sample(ordered, n))
    return drawn


@dataclass(frozen=True)
class SampledCase:
    """A drawn case with its stratum, inclusion probability π and design weight 1/π."""

    case_id: int
    stratum: str
    probability: float
    weight: float
    #: Cases that shared its telephone number (1 when none did).
    phone_group: int = 1


@dataclass(frozen=True)
class StratumSample:
    key: StratumKey
    label: str
    population: int  # N_h: eligible cases after the one-citizen rule, drawn from
    size: int  # n_h
    #: Eligible cases before the one-citizen rule (some are represented from other strata).
    cases: int


@dataclass(frozen=True)
class Sample:
    cases: tuple[SampledCase, ...]
    strata: tuple[StratumSample, ...]
    #: Eligible cases left out because another case with their number represents them.
    duplicates: int
    requested: int
    notes: tuple[str, ...]

    @property
    def eligible(self) -> int:
        return sum(s.population for s in self.strata)


def select_sample(
    design: SamplingDesign,
    strata: Mapping[StratumKey, Sequence[int]],
    shared_phones: Iterable[Sequence[int]] = (),
) -> Sample:
    """Apply the one-citizen rule, plan the sizes and draw: the whole sample of a campaign.

    ``strata`` holds the eligible case ids of each stratum; ``shared_phones`` the groups of
    those cases that share their representative number. π = (1/k)·(n_h/N_h): the first
    phase keeps one of k cases per number, the second draws n_h of the N_h kept (see
    docs/sampling.md for why this product is the right weight).
    """
    chosen: dict[int, int] = {}
    dropped: set[int] = set()
    if design.exclusions.one_per_phone:
        chosen, dropped = choose_representatives(shared_phones, design.seed)
    kept = {key: list(filterfalse(dropped.__contains__, ids)) for key, ids in strata.items()}
    population = {key: len(ids) for key, ids in kept.items()}
    plan = plan_sizes(design, population)
    drawn = draw(kept, plan.sizes, design.seed)
    cases: list[SampledCase] = []
    summary: list[StratumSample] = []
    for key in sorted(population):
        name, big_n, ids = label(key), population[key], drawn[key]
        summary.append(StratumSample(key, name, big_n, len(ids), len(strata[key])))
        for case_id in ids:
            k = chosen.get(case_id, 1)
            # One correctly rounded division each: a census stratum gets exactly 1 and 1.
            cases.append(
                SampledCase(case_id, name, len(ids) / (big_n * k), big_n * k / len(ids), k)
            )
    return Sample(tuple(cases), tuple(summary), len(dropped), plan.requested, plan.notes)
