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


def ensure_first_admin(db: Database, now: dt.datetime) -> str | None:
    """Create the user ``admin`` when the database has no user at all; its password, else None."""
    from pyros_common.db.models import User
    from pyros_routines import service
    from sqlalchemy import func, select

    with db.session() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return None
        password = secrets.token_urlsafe(12)
        service.create_user(session=s, username=ADMIN, password=password, role="admin", active=True, now=now)
    return password


def first_run_text(url: str, password: str, data_dir: Path | None = None) -> str:
    """The block ``pyros up`` prints once, when it has just made the first admin."""
    dd = f" --data-dir {data_dir}" if data_dir is not None else ""
    rule = "=" * 78
    return "\n".join(
        [
            rule,
            "PyROS first run: an admin account was created in the new database.",
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
            f"  pyros programs create GRB --grade A --quota-percent 30{dd}",
            "  pyros request submit examples/m31.json",
            "  pyros request list",
            rule,
        ]
    )
