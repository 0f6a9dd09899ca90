"""Migration steps more than one service's history runs, frozen as those revisions ran them.

Never edit a function here once a revision calls it: a change is a new function called by a new revision.
"""

import sqlalchemy as sa
from alembic import op

import libs.store


def create_messaging_tables_v1() -> None:
    """The inbox, outbox and seen-commands tables every service has (libs.store.messaging), as of 0001."""
    op.create_table('inbox',
    sa.Column('consumer', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('processed_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id'),
    if_not_exists=True,
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('stream', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('created_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('published_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_published_at'), ['published_at'], unique=False, if_not_exists=True)

    op.create_table('seen_commands',
    sa.Column('command_id', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('signer', sa.String(length=200), nullable=False),
    sa.Column('issued_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('received_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('command_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('seen_commands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seen_commands_issued_at'), ['issued_at'], unique=False, if_not_exists=True)


def drop_messaging_tables_v1() -> None:
    with op.batch_alter_table('seen_commands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seen_commands_issued_at'))

    op.drop_table('seen_commands')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at'))

    op.drop_table('outbox')
    op.drop_table('inbox')
