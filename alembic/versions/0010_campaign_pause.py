"""A sampled campaign may be paused (nothing dialled) and resumed: status 'paused'.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_PAUSED = "status = 'draft' OR status = 'sampled' OR status = 'paused' OR status = 'closed'"
WITHOUT = "status = 'draft' OR status = 'sampled' OR status = 'closed'"


def upgrade() -> None:
    # SQLite cannot alter a CHECK constraint: batch mode copies the table (a few rows).
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_campaigns_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_campaigns_status"), WITH_PAUSED)


def downgrade() -> None:
    # Resuming or closing a paused campaign here would dial, or end, it behind the office's
    # back: the office decides first.
    paused = (
        op.get_bind()
        .execute(sa.text("SELECT name FROM campaigns WHERE status = 'paused' ORDER BY name"))
        .scalars()
        .all()
    )
    if paused:
        raise RuntimeError(
            f"campaigns {', '.join(paused)} are paused, which the older schema cannot hold: "
            "resume or close them (callback campaign resume|close NAME) before downgrading"
        )
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_campaigns_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_campaigns_status"), WITHOUT)
