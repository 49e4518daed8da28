"""Fixtures shared by every tier: real Kafka and PostgreSQL for integration tests.

With CI=true a missing broker or database is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"

# CI explores the same examples on every run, so a rehearsal predicts it; a developer's
# runs draw new ones (and keep failures in .hypothesis/), which is where new bugs turn up.
settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    settings.load_profile("ci")
KAFKA = os.environ.get("PYROS_TEST_KAFKA", "127.0.0.1:9092")
PG_ADMIN_URL = os.environ.get("PYROS_TEST_PG", "postgresql://pyros:pyros@127.0.0.1:5432/pyros")


def missing(what: str, how: str) -> None:
    """Fail in CI, skip elsewhere."""
    msg = f"{what} is not reachable; {how}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: integration tests never skip)")
    pytest.skip(msg)


def _port_open(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not _port_open(KAFKA):
        missing(f"Kafka at {KAFKA}", "start it with `scripts/kafka.sh start`")
    from pyros_common.bus.kafka import KafkaUnreachable, check_kafka

    try:
        asyncio.run(check_kafka(KAFKA, timeout_s=10))
    except KafkaUnreachable as exc:
        missing(str(exc), "start it with `scripts/kafka.sh start`")
    return KAFKA


@pytest.fixture
def topic_prefix() -> str:
    """Every integration test gets its own topics and consumer groups."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    try:
        import psycopg

        conn = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        missing(
            f"PostgreSQL at {PG_ADMIN_URL} ({type(exc).__name__})",
            "start it with `scripts/postgres.sh start`",
        )
        raise
    name = f"pyros_test_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def voevents_dir() -> Path:
    d = ROOT / "tests" / "data" / "voevents"
    if not (d / "MANIFEST.tsv").is_file():
        pytest.fail(f"{d} is missing: the VOEvent corpus travels with the repository")
    return d


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[object]:
    """A migrated PyROS database on a fresh PostgreSQL database; disposed afterwards."""
    from pyros_common.db import Database

    db = Database(pg_url)
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
