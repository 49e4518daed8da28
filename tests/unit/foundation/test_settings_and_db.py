from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from pyros_common.db import Database, DatabaseNotMigrated
from pyros_common.db.models import ProcessedEvent, Schedule
from pyros_common.settings import Settings
from sqlalchemy import func, select


def test_production_refuses_a_missing_or_weak_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYROS_ENV", "production")
    with pytest.raises(ValidationError, match="PYROS_JWT_SECRET must be set"):
        Settings()
    monkeypatch.setenv("PYROS_JWT_SECRET", "short")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings()
    monkeypatch.setenv("PYROS_JWT_SECRET", "x" * 40)
    assert Settings().env == "production"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYROS_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("PYROS_TOPIC_PARTITIONS", "6")
    s = Settings()
    assert (s.kafka_bootstrap, s.topic_partitions, s.env) == ("kafka:9092", 6, "development")


def test_migrations_and_idempotency_store_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    with pytest.raises(DatabaseNotMigrated, match=r"is at migration none"):
        db.check()
    db.upgrade()
    db.check()
    assert {
        "requests",
        "sequences",
        "albums",
        "plans",
        "alerts",
        "schedules",
        "devices",
        "images",
        "users",
        "programs",
        "processed_events",
    } <= set(db.table_names())
    now = datetime(2026, 12, 15, tzinfo=UTC)
    with db.session() as s:
        assert db.mark_processed(s, "alerts", "e1", now) is True
        assert db.mark_processed(s, "alerts", "e1", now) is False
        assert db.mark_processed(s, "scheduler", "e1", now) is True
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ProcessedEvent)) == 2
        s.add(Schedule(telescope_id="gft", night=now.date(), version=1, created_at=now, document={}))
    with db.session() as s:
        got = s.scalars(select(Schedule)).one()
        assert got.created_at == now and got.created_at.tzinfo is not None
    db.dispose()


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.upgrade()
    with pytest.raises(Exception, match="naive datetime"), db.session() as s:
        s.add(
            Schedule(
                telescope_id="gft",
                night=datetime(2026, 1, 1).date(),
                version=1,
                created_at=datetime(2026, 1, 1),
                document={},
            )
        )
    db.dispose()


def test_a_transaction_chosen_as_a_deadlock_victim_runs_again(tmp_path: Path) -> None:
    """Seen in benchmarks/alert_to_slew.py on PostgreSQL: a cancellation through the API met the
    routines consumer in a deadlock and the user got a 500. A transient conflict runs again."""
    from sqlalchemy.exc import OperationalError

    class Deadlock(Exception):
        sqlstate = "40P01"

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    calls: list[int] = []

    def work(session: object) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE requests ...", {}, Deadlock("deadlock detected"))
        return "done"

    assert db.transaction(work) == "done" and len(calls) == 3

    def broken(session: object) -> str:
        raise OperationalError("SELECT 1", {}, Exception("no such table: x"))

    with pytest.raises(OperationalError, match="no such table"):
        db.transaction(broken)
    db.dispose()
