"""monitoring: device health and history, site conditions, the site's status

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = {"owner": "monitoring"}


def upgrade() -> None:
    op.create_table(
        "monitoring_devices",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
        info=OWNER,
    )
    op.create_table(
        "monitoring_device_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        info=OWNER,
    )
    op.create_index("ix_monitoring_device_history_device_id", "monitoring_device_history", ["device_id"])
    op.create_index("ix_monitoring_device_history_at", "monitoring_device_history", ["at"])
    op.create_table(
        "monitoring_conditions",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("safe", sa.Boolean(), nullable=False),
        sa.Column("sky", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("memory", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site_id"),
        info=OWNER,
    )
    op.create_table(
        "monitoring_site_status",
        sa.Column("telescope_id", sa.String(length=64), nullable=False),
        sa.Column("system", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("last_alert", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("telescope_id"),
        info=OWNER,
    )


def downgrade() -> None:
    op.drop_table("monitoring_site_status")
    op.drop_table("monitoring_conditions")
    op.drop_index("ix_monitoring_device_history_at", "monitoring_device_history")
    op.drop_index("ix_monitoring_device_history_device_id", "monitoring_device_history")
    op.drop_table("monitoring_device_history")
    op.drop_table("monitoring_devices")
