"""Campaigns, agents, hotlines, the do-not-call list, queue items and call attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("login", name=op.f("uq_agents_login")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("script", sa.String(length=100), nullable=False),
        sa.Column("dialer", sa.String(length=50), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("design", sa.JSON(), nullable=False),
        sa.Column("sample_report", sa.JSON(), nullable=True),
        sa.Column("review_corrections", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status = 'draft' OR status = 'sampled' OR status = 'closed'",
            name=op.f("ck_campaigns_status"),
        ),
        sa.CheckConstraint(
            "target = 'cases' OR target = 'hotlines'", name=op.f("ck_campaigns_target")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "do_not_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_not_call")),
        sa.UniqueConstraint("e164", name=op.f("uq_do_not_call_e164")),
    )
    op.create_table(
        "agent_units",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_units_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_agent_units_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("agent_id", "unit_id", name=op.f("pk_agent_units")),
    )
    op.create_table(
        "hotlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_hotlines_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotlines")),
        sa.UniqueConstraint("unit_id", "e164", name=op.f("uq_hotlines_unit_id_e164")),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("hotline_id", sa.Integer(), nullable=True),
        sa.Column("stratum", sa.String(length=300), nullable=False),
        sa.Column("inclusion_probability", sa.Double(), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_reason", sa.String(length=32), nullable=True),
        sa.Column("appointment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appointment_agent", sa.String(length=100), nullable=True),
        sa.Column("appointment_number", sa.String(length=20), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slot0_attempts", sa.Integer(), nullable=False),
        sa.Column("slot1_attempts", sa.Integer(), nullable=False),
        sa.Column("slot2_attempts", sa.Integer(), nullable=False),
        sa.Column("slot3_attempts", sa.Integer(), nullable=False),
        sa.Column("held_by", sa.String(length=100), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_disposition", sa.String(length=8), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state = 'open' OR state = 'finished'", name=op.f("ck_queue_items_state")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_queue_items_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_queue_items_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["hotline_id"], ["hotlines.id"], name=op.f("fk_queue_items_hotline_id_hotlines")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_queue_items_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_items")),
        sa.UniqueConstraint(
            "campaign_id", "case_id", name=op.f("uq_queue_items_campaign_id_case_id")
        ),
    )
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_items_held_by"), ["held_by"], unique=False)
        batch_op.create_index(
            "ix_queue_items_ready", ["campaign_id", "unit_id", "state", "due_at"], unique=False
        )

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_item_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("dialer", sa.String(length=50), nullable=False),
        sa.Column("provider_call_id", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("disposition", sa.String(length=8), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "state = 'pending' OR state = 'placed' OR state = 'ended' OR state = 'unknown'",
            name=op.f("ck_attempts_state"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_attempts_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_attempts_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["queue_item_id"],
            ["queue_items.id"],
            name=op.f("fk_attempts_queue_item_id_queue_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_number_placed_at", ["number", "placed_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_attempts_provider_call_id"), ["provider_call_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attempts_queue_item_id"), ["queue_item_id"], unique=False
        )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_log_attempt_id_attempts"), "attempts", ["attempt_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_audit_log_attempt_id_attempts"), type_="foreignkey")

    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_queue_item_id"))
        batch_op.drop_index(batch_op.f("ix_attempts_provider_call_id"))
        batch_op.drop_index("ix_attempts_number_placed_at")

    op.drop_table("attempts")
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_items_ready")
        batch_op.drop_index(batch_op.f("ix_queue_items_held_by"))

    op.drop_table("queue_items")
    op.drop_table("hotlines")
    op.drop_table("agent_units")
    op.drop_table("do_not_call")
    op.drop_table("campaigns")
    op.drop_table("agents")
