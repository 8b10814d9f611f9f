"""The dialers' shared token bucket: when each may next place a call.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dialer_pacing",
        sa.Column("dialer", sa.String(length=50), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dialer", name=op.f("pk_dialer_pacing")),
    )


def downgrade() -> None:
    op.drop_table("dialer_pacing")
