"""Each conversation belongs to an owner; those saved before get "" (nobody's, hidden), as
history saved on a shared page cannot be told apart by visitor.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversation", sa.Column("owner", sa.String(), nullable=False, server_default="")
    )
    op.create_index("ix_conversation_owner", "conversation", ["owner"])


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_index("ix_conversation_owner")
        batch.drop_column("owner")
