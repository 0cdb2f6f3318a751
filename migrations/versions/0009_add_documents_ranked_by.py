"""add documents.ranked_by: the model version whose scores gave a text its place in the queue

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: no row is rewritten. Texts ranked before it stay None (the page
    # then says the order is not known to be the current model's) until the next scoring.
    op.add_column("documents", sa.Column("ranked_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("ranked_by")
