"""add documents.draft: an undone save's spans, kept with the claim so a reload shows them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a nullable column without a default: an ALTER TABLE that rewrites no row (SQLite and
    # PostgreSQL alike), however many texts the table holds
    op.add_column("documents", sa.Column("draft", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("draft")
