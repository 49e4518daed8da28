"""routines: the request listing (newest first, per program) is an index scan

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_requests_created_at_id", "requests", ["created_at", "id"])
    op.create_index("ix_requests_program_created_at", "requests", ["program_code", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_requests_program_created_at", table_name="requests")
    op.drop_index("ix_requests_created_at_id", table_name="requests")
