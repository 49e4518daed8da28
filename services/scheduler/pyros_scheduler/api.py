"""GET /api/v1/schedule: a stored version of a night's plan with its neighbours (<PREC> <NOW> <SUCC>)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pyros_common.db import Database
from pyros_common.db.models import Schedule
from pyros_common.domain.sky.sites import get_site
from pyros_common.problem import ProblemRoute, problems
from pyros_common.settings import Settings
from sqlalchemy import func, select


def _link(night: dt.date, version: int | None, telescope: str) -> str:
    v = f"&version={version}" if version is not None else ""
    return f"/api/v1/schedule?night={night.isoformat()}{v}&telescope={telescope}"


def default_telescope(settings: Settings) -> str:
    """The telescope a schedule request means when it names none (the scheduler's first)."""
    site = get_site(settings.site)
    return site.telescopes[0].id if len(site.telescopes) > 1 else settings.telescope_id


def routes(
    *,
    db: Callable[[], Database],
    default_telescope: str,
    current_night: Callable[[], dt.date | None] = lambda: None,
    auth: Callable[..., Any] | None = None,
    view: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
) -> APIRouter:
    """Routes of the scheduler; ``auth`` is the dependency that admits a caller, ``view`` what that
    caller may see of an answer (the gateway's: a plain user sees only their programs).

    Without a ``current_night`` (outside the scheduler process) the current night is the latest
    stored one."""
    deps = [Depends(auth)] if auth is not None else []
    router = APIRouter(
        tags=["schedule"], dependencies=deps, route_class=ProblemRoute, responses=problems(401, 404, 422)
    )

    @router.get("/schedule")
    def get_schedule(
        night: Annotated[dt.date | None, Query(description="Local date of the night's evening.")] = None,
        version: Annotated[int | None, Query(ge=1, description="Version; the latest by default.")] = None,
        telescope: Annotated[str | None, Query(description="Telescope id.")] = None,
        caller: Any = Depends(auth or _nobody),
    ) -> dict[str, Any]:
        """A schedule version (the current one by default) and links to the previous and next
        versions and nights."""
        tel = telescope or default_telescope
        the_night = night or current_night()
        with db().session() as s:
            if the_night is None:
                the_night = s.scalar(select(func.max(Schedule.night)).where(Schedule.telescope_id == tel))
            if the_night is None:
                raise HTTPException(404, "no schedule yet")
            q = select(Schedule).where(Schedule.telescope_id == tel, Schedule.night == the_night)
            if version is None:
                row = s.scalars(q.order_by(Schedule.version.desc()).limit(1)).first()
            else:
                row = s.scalars(q.where(Schedule.version == version)).first()
            if row is None:
                what = f"version {version} of " if version else ""
                raise HTTPException(404, f"no {what}schedule for the night of {the_night} on {tel}")
            latest = s.scalar(
                select(func.max(Schedule.version)).where(
                    Schedule.telescope_id == tel, Schedule.night == the_night
                )
            )
            prev_night = s.scalar(
                select(func.max(Schedule.night)).where(
                    Schedule.telescope_id == tel, Schedule.night < the_night
                )
            )
            next_night = s.scalar(
                select(func.min(Schedule.night)).where(
                    Schedule.telescope_id == tel, Schedule.night > the_night
                )
            )
            v = row.version
            prev_v = v - 1 if v > 1 else None
            next_v = v + 1 if latest is not None and v < latest else None
            out = {
                "telescope": tel,
                "night": the_night.isoformat(),
                "version": v,
                "latest_version": latest,
                "current": v == latest,
                "trigger": row.trigger,
                "created_at": row.created_at.isoformat(),
                "objective": row.objective,
                "solver": row.solver,
                "schedule": row.document,
                "previous": None
                if prev_v is None
                else {"version": prev_v, "href": _link(the_night, prev_v, tel)},
                "next": None
                if next_v is None
                else {"version": next_v, "href": _link(the_night, next_v, tel)},
                "previous_night": None
                if prev_night is None
                else {"night": prev_night.isoformat(), "href": _link(prev_night, None, tel)},
                "next_night": None
                if next_night is None
                else {"night": next_night.isoformat(), "href": _link(next_night, None, tel)},
            }
        return out if view is None else view(out, caller)

    return router


def _nobody() -> None:
    return None
