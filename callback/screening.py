"""The frame's case-level exclusions (no number, do-not-call, recently called), before the draw."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

_DNC, _RECENT = -1, -2


@dataclass
class Screened:
    """The frame after the case-level exclusions, before the one-citizen rule."""

    #: Eligible case ids by stratum, in no particular order.
    strata: dict[Any, list[int]] = field(default_factory=dict)
    #: Groups of two or more eligible cases with the same representative number.
    shared_phones: list[list[int]] = field(default_factory=list)
    frame: int = 0
    no_valid_phone: int = 0
    do_not_call: int = 0
    recently_called: int = 0


def screen(
    rows: Iterable[tuple[int, Any, str | None]],
    do_not_call: Collection[str],
    recently_called: Collection[str],
    one_per_phone: bool = True,
) -> Screened:
    """Apply the case-level exclusions to frame rows ``(case id, stratum, number)``.

    A case has one row per valid number, or one row with None when it has none. It is
    excluded, under the first reason that applies: no valid number; every valid number on the
    do-not-call list; any of its valid numbers called within the contact gap (the cap protects
    the person, whichever number reached them). Its representative number, used to find cases
    of one citizen, is the smallest number it may still be called on. Rows may come in any
    order; this loop runs once per row of a million-case frame, hence its plain style.
    """
    result = Screened()
    strata = result.strata
    rows = rows if isinstance(rows, list) else list(rows)
    # Cases with several numbers are rare; find them first (set.add returns None) so that the
    # common one-row case is decided as soon as its row is read.
    seen: set[int] = set()
    several = {cid for cid, _, _ in rows if cid in seen or seen.add(cid)}  # type: ignore[func-returns-value]
    del seen
    # One dict answers every question about a number in one lookup: the barred numbers map to
    # a negative reason, every other number to the first eligible case seen with it. Case ids
    # are positive, so the two never meet.
    owner: dict[str, int] = dict.fromkeys(recently_called, _RECENT)
    owner.update(dict.fromkeys(do_not_call, _DNC))
    lookup = owner.setdefault if one_per_phone else owner.get
    shared: dict[str, list[int]] = {}
    numbers_of: dict[int, tuple[Any, list[str]]] = {}
    no_phone = dnc = recent = extra = 0
    for cid, stratum, number in rows:
        if cid in several:
            extra += 1
            entry = numbers_of.setdefault(cid, (stratum, []))
            if number is not None:
                entry[1].append(number)
            continue
        if number is None:
            no_phone += 1
            continue
        first = lookup(number, cid)
        if first < 0:
            if first == _DNC:
                dnc += 1
            else:
                recent += 1
            continue
        group = strata.get(stratum)
        if group is None:
            group = strata[stratum] = []
        group.append(cid)
        if first != cid:
            shared.setdefault(number, [first]).append(cid)
    for cid, (stratum, numbers) in numbers_of.items():
        usable = [n for n in numbers if owner.get(n) != _DNC]
        if not numbers:
            no_phone += 1
        elif not usable:
            dnc += 1
        elif any(n in recently_called for n in numbers):
            recent += 1
        else:
            strata.setdefault(stratum, []).append(cid)
            number = min(usable)
            first = lookup(number, cid)
            if first != cid:
                shared.setdefault(number, [first]).append(cid)
    result.frame = len(rows) - extra + len(several)
    result.no_valid_phone, result.do_not_call, result.recently_called = no_phone, dnc, recent
    result.shared_phones = list(shared.values())
    return result
