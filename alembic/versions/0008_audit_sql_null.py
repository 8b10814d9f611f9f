"""The audit log says "nothing" as SQL NULL: before of a creation, after of a removal.

Earlier writers passed None to the JSON columns, which stores the JSON value null; others left
the column out (SQL NULL). ``before IS NULL`` missed the first kind. The model now maps None to
SQL NULL (``JSON(none_as_null=True)``), and this rewrites the rows already stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("before", "after"):
        op.execute(
            f'UPDATE audit_log SET "{column}" = NULL WHERE CAST("{column}" AS TEXT) = \'null\''
        )


def downgrade() -> None:
    # Nothing to undo: both spellings read back as None, and the rows' facts are unchanged.
    pass
