"""Issue 10 row 11: submissions at once against a nearly spent quota, on the real PostgreSQL.

20 submissions race for a quota that fits 5: exactly 5 are accepted, 15 refused over quota, and
the booked time is 5 requests' worth. The same on SQLite, ``pyros up``'s database.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pyros_common.auth import token_for
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.db import Database
from pyros_common.db.models import QuotaEntry
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_gateway.app import GatewayService
from pyros_gateway.routes import ROUTES
from pyros_routines import programs, users
from pyros_routines.app import RoutinesService
from sqlalchemy import func, select

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 10, 20, 18, 0, tzinfo=dt.UTC)
SUBMISSIONS = 20
FITS = 5


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_db")
        return
    db = Database(f"sqlite:///{tmp_path / 'pyros.db'}")
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()


def _doc(i: int) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(json.loads((ROOT / "examples" / "m31.json").read_text()))
    doc["program"], doc["name"] = "RACE", f"race-{i}"
    return doc


async def test_twenty_submissions_at_once_on_a_quota_for_five(database: Database, tmp_path: Path) -> None:
    clock = SimulatedClock(NOW)
    settings = Settings(data_dir=tmp_path, jwt_secret=SecretStr("q" * 40), database_url=database.url)
    ctx = ServiceContext(bus=InProcessBus(clock=clock), clock=clock, settings=settings, db=database)
    gw = GatewayService(ctx, ROUTES)
    app = gw.create_app([RoutinesService(ctx), gw])
    with database.session() as s:
        programs.create_program(session=s, code="RACE", grade="A", quota_percent=100.0, now=NOW)
        for name in ("astro", "root"):
            users.create_user(
                session=s,
                username=name,
                password="race password",
                role="admin" if name == "root" else "user",
                now=NOW,
                active=True,
                programs=["RACE"],
            )
    h = {"Authorization": f"Bearer {token_for(database, 'astro', settings=settings, now=NOW)}"}
    admin = {"Authorization": f"Bearer {token_for(database, 'root', settings=settings, now=NOW)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pyros") as c:
        report = (await c.post("/api/v1/requests/validate", json=_doc(0), headers=h)).json()
        need_s = report["duration_s"]
        night_s = (await c.get("/api/v1/programs/RACE/quota", headers=h)).json()["semester_night_s"]
        # Room for 5.5 requests: the 6th does not fit.
        percent = 100.0 * (FITS + 0.5) * need_s / night_s
        r = await c.patch("/api/v1/programs/RACE", json={"quota_percent": percent}, headers=admin)
        assert r.status_code == 200, r.text

        answers = await asyncio.gather(
            *(c.post("/api/v1/requests", json=_doc(i), headers=h) for i in range(SUBMISSIONS))
        )
        quota = (await c.get("/api/v1/programs/RACE/quota", headers=h)).json()
    codes = sorted(a.status_code for a in answers)
    print(f"\n{database.engine.dialect.name}: {SUBMISSIONS} submissions at once, quota for {FITS}: {codes}")
    assert codes.count(201) == FITS, [a.text[:200] for a in answers if a.status_code not in (201, 409)]
    assert codes.count(409) == SUBMISSIONS - FITS
    refused = [a.json() for a in answers if a.status_code == 409]
    assert all(p["type"] == "urn:pyros:problem:over-quota" for p in refused)
    with database.session() as s:
        booked = s.scalar(select(func.sum(QuotaEntry.booked_s)).where(QuotaEntry.program_code == "RACE"))
    assert booked == pytest.approx(FITS * need_s)
    assert quota["booked_s"] == pytest.approx(FITS * need_s, abs=0.1)
    assert quota["left_s"] >= 0
