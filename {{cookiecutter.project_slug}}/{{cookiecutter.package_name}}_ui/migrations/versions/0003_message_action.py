"""What the page offers beside a saved error (retry, edit, new_chat, configure), so that a
reloaded page offers the same; errors saved before offer Retry, as they did.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "message", sa.Column("action", sa.String(), nullable=False, server_default="retry")
    )


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("action")
