"""Small builders for routines tests: an app on SQLite and the in-process bus, users, programs, tokens."""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from pyros_common.auth import token_for
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.db import Database
from pyros_common.runtime.service import Service, ServiceContext
from pyros_common.settings import Settings
from pyros_gateway.app import GatewayService
from pyros_gateway.routes import ROUTES
from pyros_routines import programs, users
from pyros_routines.app import RoutinesService

ROOT = Path(__file__).resolve().parents[3]
# 11:00 local at San Pedro Mártir: "tonight" is the night of 2025-10-20, M31 high around midnight.
NOW = dt.datetime(2025, 10, 20, 18, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"


def m31() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "examples" / "m31.json").read_text())
    return doc


def document(program: str = "GRB", dec_deg: float | None = None, name: str = "test") -> dict[str, Any]:
    doc = copy.deepcopy(m31())
    doc["program"], doc["name"] = program, name
    if dec_deg is not None:
        doc["sequences"][0]["target"]["dec_deg"] = dec_deg
    return doc


@dataclass
class Env:
    ctx: ServiceContext
    app: FastAPI
    bus: InProcessBus
    db: Database
    clock: SimulatedClock
    services: list[Service]

    def program(self, code: str, quota_percent: float = 30.0, grade: str = "A") -> None:
        with self.db.session() as s:
            programs.create_program(session=s, code=code, grade=grade, quota_percent=quota_percent, now=NOW)

    def user(self, name: str, role: str = "user", programs: tuple[str, ...] = (), active: bool = True) -> str:
        """Create a user; returns a bearer token header value."""
        with self.db.session() as s:
            users.create_user(
                session=s,
                username=name,
                password=PASSWORD,
                role=role,
                now=NOW,
                active=active,
                programs=list(programs),
            )
        return self.token(name)

    def token(self, name: str) -> str:
        return token_for(self.db, name, settings=self.ctx.settings, now=self.clock.now())

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_env(tmp_path: Path, extra_services: tuple[type[Service], ...] = (), site: str = "gft-spm") -> Env:
    db = Database(f"sqlite:///{tmp_path / 'pyros.db'}")
    db.upgrade()
    clock = SimulatedClock(NOW)
    bus = InProcessBus(clock=clock)
    settings = Settings(data_dir=tmp_path, jwt_secret=SecretStr("x" * 40), database_url=db.url, site=site)
    ctx = ServiceContext(bus=bus, clock=clock, settings=settings, db=db)
    services: list[Service] = [RoutinesService(ctx), *(cls(ctx) for cls in extra_services)]
    gw = GatewayService(ctx, ROUTES)
    app = gw.create_app([*services, gw])
    return Env(ctx=ctx, app=app, bus=bus, db=db, clock=clock, services=services)
