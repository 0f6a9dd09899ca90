"""Alembic runs this for every command on this history; libs.migrations passes the connection in."""

from alembic import context

from libs.migrations import run_env

run_env(context)
