"""Indexes that let a claim walk the queue in claim order instead of sorting every due row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Only rows a claim may take: open, unheld, with a due time.
READY = "state = 'open' AND held_by IS NULL AND due_at IS NOT NULL"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # The claim orders by (priority DESC, attempts in the current slot, last attempt with
    # never-tried first, id). SQLite sorts NULL first already and cannot say NULLS FIRST in
    # CREATE INDEX; PostgreSQL sorts NULL last unless told.
    last = sa.text("last_attempt_at NULLS FIRST") if postgres else sa.text("last_attempt_at")
    for slot in range(4):
        op.create_index(
            f"ix_queue_items_claim_slot{slot}",
            "queue_items",
            [sa.text("priority DESC"), sa.text(f"slot{slot}_attempts"), last, sa.text("id")],
            postgresql_where=sa.text(READY),
            sqlite_where=sa.text(READY),
        )
    op.create_index(
        "ix_queue_items_appointments",
        "queue_items",
        ["appointment_at"],
        postgresql_where=sa.text("state = 'open' AND appointment_at IS NOT NULL"),
        sqlite_where=sa.text("state = 'open' AND appointment_at IS NOT NULL"),
    )
    # Partial, so that SQLite does not pick it for "held_by IS NULL", which most rows are.
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_items_held_by")
    op.create_index(
        "ix_queue_items_held",
        "queue_items",
        ["held_by"],
        postgresql_where=sa.text("held_by IS NOT NULL"),
        sqlite_where=sa.text("held_by IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_queue_items_held", table_name="queue_items")
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.create_index("ix_queue_items_held_by", ["held_by"], unique=False)
    op.drop_index("ix_queue_items_appointments", table_name="queue_items")
    for slot in range(4):
        op.drop_index(f"ix_queue_items_claim_slot{slot}", table_name="queue_items")
