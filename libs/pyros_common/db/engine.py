"""Engine, sessions, migrations and the prerequisite check."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, insert, inspect, text
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pyros_common.db.models import ProcessedEvent

T = TypeVar("T")


def _is_transient(exc: OperationalError) -> bool:
    """A deadlock victim, a serialization conflict, a busy SQLite file, or a connection the
    server dropped (a restart): the next attempt, on a fresh connection, can succeed."""
    code = getattr(exc.orig, "sqlstate", None)
    return (
        code in ("40P01", "40001")
        or "database is locked" in str(exc.orig)
        or bool(getattr(exc, "connection_invalidated", False))
    )


# A pooled connection idle for longer than this is pinged before use (a server restart or an
# idle timeout may have closed it). A ping on every checkout, SQLAlchemy's pool_pre_ping, costs
# one more round trip in each transaction: on the alert path, one per service.
PING_AFTER_IDLE_S = 5.0


MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnreachable(RuntimeError):
    """The database did not answer."""


class DatabaseNotMigrated(RuntimeError):
    """The schema is older than the code."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


_MARKS: dict[str, Any] = {}  # dialect name -> the compiled-once INSERT ... ON CONFLICT DO NOTHING


def _idle_from_now(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


class Database:
    """One engine per process; sessions are short-lived and per unit of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        event.listen(self.engine, "checkin", _idle_from_now)
        event.listen(self.engine, "checkout", self._ping_if_idle)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _ping_if_idle(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Ping a connection that sat idle in the pool; a dead one is replaced (the pool takes
        DisconnectionError as "discard it and check out another")."""
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            self.engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection lost: {exc}") from exc

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def transaction(self, fn: Callable[[Session], T], *, attempts: int = 4) -> T:
        """``fn(session)`` in one transaction, run again from the start when the database chose
        it as the victim of a deadlock or a serialization conflict (PostgreSQL 40P01 / 40001,
        SQLite "database is locked"): what concurrent writers meet now and then, and what a
        caller must not see as a 500. ``fn`` must be safe to run again (it only touches the
        session)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.session() as s:
                    return fn(s)
            except OperationalError as exc:
                if attempt == attempts or not _is_transient(exc):
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()

    # --- migrations ------------------------------------------------------------------

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations (the same on PostgreSQL and SQLite)."""
        from alembic import command

        cfg = self._alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def check(self) -> None:
        """Raise DatabaseUnreachable or DatabaseNotMigrated with a sentence a person can act on."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise DatabaseUnreachable(f"the database at {self._safe_url()} is unreachable") from exc
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise DatabaseNotMigrated(
                f"the database at {self._safe_url()} is at migration {current or 'none'}, the code needs {head}"
            )

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    # --- idempotency -----------------------------------------------------------------

    @staticmethod
    def mark_processed(session: Session, group: str, event_id: str, when: datetime) -> bool:
        """Record that ``group`` handled ``event_id`` in this transaction; False if it already had.

        Call it in the same transaction as the handler's effect, so that the effect and the
        mark commit together.
        """
        conn = session.connection()
        name = conn.dialect.name
        if name not in ("postgresql", "sqlite"):  # no ON CONFLICT: a savepoint instead
            try:
                with session.begin_nested():
                    session.execute(
                        insert(ProcessedEvent).values(
                            consumer_group=group, event_id=event_id, processed_at=when
                        )
                    )
            except IntegrityError:
                return False
            return True
        # One statement (one round trip), where a savepoint took three.
        stmt = _MARKS.get(name)
        if stmt is None:
            from sqlalchemy.dialects import postgresql, sqlite

            if name == "postgresql":
                stmt = (
                    postgresql.insert(ProcessedEvent)
                    .on_conflict_do_nothing()
                    .returning(ProcessedEvent.event_id)
                )
            else:
                stmt = (
                    sqlite.insert(ProcessedEvent).on_conflict_do_nothing().returning(ProcessedEvent.event_id)
                )
            _MARKS[name] = stmt
        res = conn.execute(stmt, {"consumer_group": group, "event_id": event_id, "processed_at": when})
        return res.first() is not None  # no row back: the conflict, already handled
