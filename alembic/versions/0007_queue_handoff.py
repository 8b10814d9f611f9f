"""Queue items say who works them next when it is not the campaign's dialer (hand-offs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default) on both databases: batch mode would rebuild
    # queue_items on SQLite and lose the claim's partial indexes of 0005.
    op.add_column("queue_items", sa.Column("handed_to", sa.String(length=16), nullable=True))
    op.add_column("queue_items", sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place when no index or constraint names it.
    with op.batch_alter_table("queue_items", recreate="never") as batch_op:
        batch_op.drop_column("handed_at")
        batch_op.drop_column("handed_to")
