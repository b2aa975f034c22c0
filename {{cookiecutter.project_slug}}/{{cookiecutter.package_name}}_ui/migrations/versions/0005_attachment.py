"""Files sent with a question: kept in the database, so every replica can serve them, and
deleted with their message. A file not sent yet (in the composer) has no message.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("message.id")),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("media_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attachment_owner", "attachment", ["owner"])
    op.create_index("ix_attachment_message_id", "attachment", ["message_id"])


def downgrade() -> None:
    op.drop_table("attachment")
