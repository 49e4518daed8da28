"""The first admin of an empty database, made by ``pyros up`` with a random one-time password."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyros_common.db import Database

__all__ = ["ADMIN", "ensure_first_admin", "first_run_text"]

ADMIN = "admin"


ALERT_PROGRAM_QUOTA_PERCENT = 30.0


def alert_programs() -> list[str]:
    """The programs the shipped alert strategies book their requests on (GRB)."""
    from pyros_alerts.domain.strategies import load_strategies

    return sorted({s.program for s in load_strategies().values()})


def ensure_first_admin(db: Database, now: dt.datetime) -> str | None:
    """On a database with no user at all: the user ``admin`` and the alert strategies' programs
    (grade A), so that the first alert becomes a request; the admin's password, else None."""
    from pyros_common.db.models import Program, User
    from pyros_routines import programs, users
    from sqlalchemy import func, select

    with db.session() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return None
        password = secrets.token_urlsafe(12)
        users.create_user(session=s, username=ADMIN, password=password, role="admin", active=True, now=now)
        for code in alert_programs():
            if s.get(Program, code) is None:
                programs.create_program(
                    session=s,
                    code=code,
                    grade="A",
                    quota_percent=ALERT_PROGRAM_QUOTA_PERCENT,
                    now=now,
                    name="alert follow-up",
                )
    return password


def first_run_text(url: str, password: str, data_dir: Path | None = None) -> str:
    """The block ``pyros up`` prints once, when it has just made the first admin."""
    dd = f" --data-dir {data_dir}" if data_dir is not None else ""
    rule = "=" * 78
    return "\n".join(
        [
            rule,
            "PyROS first run: an admin account was created in the new database, and the program",
            f"{', '.join(alert_programs())} (grade A, {ALERT_PROGRAM_QUOTA_PERCENT:.0f} % of the night time) for alert requests.",
            "",
            f"  URL       {url}   (API docs: {url}/docs)",
            f"  user      {ADMIN}",
            f"  password  {password}",
            "",
            "This one-time password is shown only now and is stored only as a hash: change it",
            "(the command asks for the new one; --password-stdin reads it from a pipe):",
            f"  pyros users passwd {ADMIN}{dd}",
            "",
            "Next, in another terminal:",
            f"  pyros login --url {url} --user {ADMIN}",
            "  pyros request submit examples/m31.json          # a routine request (program GRB)",
            "  pyros request list",
            f"  pyros programs create EXO --grade B --quota-percent 10{dd}   # your own programs",
            "  pyros alerts send --now tests/data/voevents/swift/bat_grb_pos_1125809.xml   # a GRB, now",
            "  pyros plan                                      # tonight's schedule, with reasons",
            rule,
        ]
    )
