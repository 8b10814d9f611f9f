"""What a claimed item dials: its campaign's rules, the next number, the extension to key.

Reads only; writing an attempt is callback.attempts (the outbox) and ending one
callback.attempt_outcomes. Both read their item through ``ITEM_WITH_CAMPAIGN``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from callback.claims import Claim
from callback.decisions import decide
from callback.models import Contact, Hotline, table
from callback.queues import campaign_rules, campaigns_t, items_t, load_histories
from callback.rules import CallingRules

q = items_t.c
contacts_t, hotlines_t = table(Contact), table(Hotline)

#: An item with what its campaign says about it; writers lock it with ``with_for_update``.
ITEM_WITH_CAMPAIGN = sa.select(
    items_t,
    campaigns_t.c.status.label("campaign_status"),
    campaigns_t.c.rules.label("campaign_rules"),
    campaigns_t.c.deadline.label("campaign_deadline"),
).join_from(items_t, campaigns_t, campaigns_t.c.id == q.campaign_id)


def item_rules(item: Row[Any]) -> CallingRules:
    """Return the calling rules of an item read by ``ITEM_WITH_CAMPAIGN``."""
    return campaign_rules(item.campaign_rules, item.campaign_deadline)


def next_number(engine: Engine, claim: Claim, now: datetime) -> str | None:
    """Return the number the rules would dial next for a claimed item, or None if none."""
    with engine.connect() as conn:
        item = conn.execute(
            ITEM_WITH_CAMPAIGN.where(q.id == sa.bindparam("item_id")), {"item_id": claim.item_id}
        ).one()
        history = load_histories(conn, [item])[item.id].history
    return decide(item_rules(item), history, now).number


def extension_of(engine: Engine, claim: Claim, number: str) -> str | None:
    """The extension to key after ``number`` answers, for a claimed item: the case's current
    contact's (0571-8800 1111 转 8001 in the frame) or the hotline's, as published."""
    if claim.case_id is not None:
        query = sa.select(contacts_t.c.extension).where(
            contacts_t.c.case_id == claim.case_id,
            contacts_t.c.e164 == number,
            contacts_t.c.superseded_at.is_(None),
        )
    elif claim.hotline_id is not None:
        query = sa.select(hotlines_t.c.extension).where(
            hotlines_t.c.id == claim.hotline_id, hotlines_t.c.e164 == number
        )
    else:
        return None
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).scalar()
