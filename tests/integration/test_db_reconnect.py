"""A connection the server dropped (a PostgreSQL restart) is replaced, not handed to a handler.

The pool pings only connections that sat idle (``PING_AFTER_IDLE_S``); a connection lost while
in use makes ``Database.transaction`` run the work again on a fresh one. And the idempotency
mark is one statement per event, still exactly once per (group, event).
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from pyros_common.db import Database
from pyros_common.db import engine as engine_mod
from sqlalchemy import text
from sqlalchemy.orm import Session

WHEN = datetime(2026, 12, 15, 4, 30, tzinfo=UTC)


def _backend_pid(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(url: str, pid: int) -> None:
    admin = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_the_server_closed_is_replaced(
    pg_db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_mod, "PING_AFTER_IDLE_S", 0.0)
    before = _backend_pid(pg_db)
    _kill(pg_url, before)
    after = _backend_pid(pg_db)  # the ping found it dead: a new connection, no error
    assert after != before


def test_a_connection_lost_in_use_is_retried_by_transaction(
    pg_db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_mod, "PING_AFTER_IDLE_S", 1e9)  # never pinged: the loss shows in use
    pid = _backend_pid(pg_db)
    _kill(pg_url, pid)
    attempts: list[int] = []

    def work(s: Session) -> int:
        attempts.append(1)
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())

    got = pg_db.transaction(work)
    assert got != pid and len(attempts) == 2


def test_the_idempotency_mark_is_once_per_group_and_event(pg_db: Database) -> None:
    with pg_db.session() as s:
        assert pg_db.mark_processed(s, "routines", "e1", WHEN) is True
        assert pg_db.mark_processed(s, "routines", "e1", WHEN) is False
        assert pg_db.mark_processed(s, "scheduler", "e1", WHEN) is True
    with pg_db.session() as s:  # committed: a redelivery after a restart is seen as handled
        assert pg_db.mark_processed(s, "routines", "e1", WHEN) is False
    # A rolled-back effect leaves no mark: the event is handled again.
    with pytest.raises(RuntimeError), pg_db.session() as s:
        assert pg_db.mark_processed(s, "routines", "e2", WHEN) is True
        raise RuntimeError("the effect failed")
    with pg_db.session() as s:
        assert pg_db.mark_processed(s, "routines", "e2", WHEN) is True
