"""A hotline may be published with an extension (0571-8800 1111 转 8001) and with a short
service number (12345, 12366); the extension is kept and keyed after the answer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a plain ADD COLUMN on both databases, no table rebuild.
    op.add_column("hotlines", sa.Column("extension", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hotlines", recreate="never") as batch_op:
        batch_op.drop_column("extension")
