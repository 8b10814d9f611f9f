"""The frame's case-level exclusions (no number, do-not-call, recently called), before the draw."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
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


@dataclass
class Share:
    """What screening one share of a frame's cases found, to be combined with the others'.

    A share holds every row of its cases (so a case with several numbers is decided whole),
    but a number can belong to cases in several shares: ``owners`` maps each number to the
    first eligible case of this share that has it as its representative number (and every
    barred number to a negative reason, the same in every share), ``shared`` the groups of
    two or more such cases.
    """

    strata: dict[Any, list[int]]
    owners: dict[str, int]
    shared: dict[str, list[int]]
    frame: int
    no_valid_phone: int
    do_not_call: int
    recently_called: int


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
    order. ``combine([screen_share(...) for each share])`` gives the same result when the
    cases are split into shares (every row of a case in one share).
    """
    return combine([screen_share(rows, do_not_call, recently_called, one_per_phone)])


def screen_share(
    rows: Iterable[tuple[int, Any, str | None]],
    do_not_call: Collection[str],
    recently_called: Collection[str],
    one_per_phone: bool = True,
) -> Share:
    """Screen one share of the frame's cases (see ``screen``); ``combine`` the shares.

    This loop runs once per row of a million-case frame, hence its plain style.
    """
    strata: dict[Any, list[int]] = {}
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
    frame = len(rows) - extra + len(several)
    return Share(strata, owner, shared, frame, no_phone, dnc, recent)


def combine(shares: Sequence[Share]) -> Screened:
    """Put the shares of one frame back together: the strata, the counts, and the groups of
    cases that share a number across shares. The shares are used up (their lists grow)."""
    first = shares[0]
    strata, owners, shared = first.strata, first.owners, first.shared
    result = Screened(strata=strata)
    for n, share in enumerate(shares):
        if n:
            for stratum, ids in share.strata.items():
                group = strata.get(stratum)
                if group is None:
                    strata[stratum] = ids
                else:
                    group.extend(ids)
            # A number eligible in two shares: its two groups (or single owners) are one.
            for number in owners.keys() & share.owners.keys():
                mine = owners[number]
                if mine < 0:  # barred: the same in every share
                    continue
                theirs = share.shared.pop(number, None) or [share.owners[number]]
                group = shared.get(number)
                if group is None:
                    shared[number] = [mine, *theirs]
                else:
                    group.extend(theirs)
            shared.update(share.shared)
            if n + 1 < len(shares):  # later shares meet this one's numbers too
                owners = share.owners | owners
        result.frame += share.frame
        result.no_valid_phone += share.no_valid_phone
        result.do_not_call += share.do_not_call
        result.recently_called += share.recently_called
    result.shared_phones = list(shared.values())
    return result
