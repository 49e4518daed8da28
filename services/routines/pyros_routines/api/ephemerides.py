"""Ephemerides of a night: Sun, twilights, Moon and planets."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Query
from pyros_common.domain.sky.ephemerides import night_ephemerides
from pyros_common.domain.sky.night import tonight
from pyros_common.domain.sky.sites import Site
from pyros_common.problem import ProblemError, ProblemRoute, problems
from starlette.concurrency import run_in_threadpool

from pyros_routines import models as m
from pyros_routines.deps import CtxDep, SiteDep, UserDep

router = APIRouter(tags=["ephemerides"], route_class=ProblemRoute)

FIRST, LAST = dt.date(1900, 1, 1), dt.date(2099, 12, 31)


# Computed once per (site, night), about a second of CPU each: one computation at a time, so
# callers asking for the same night wait for the first and share its result, and other nights
# queue behind it instead of each taking a core; a cached night is answered without waiting.
CACHE_SIZE = 256
_cache: OrderedDict[tuple[Site, dt.date], m.EphemeridesPublic] = OrderedDict()
_computing = threading.Lock()


def cached_ephemerides(site: Site, night: dt.date) -> m.EphemeridesPublic:
    """The night's ephemerides, computed once per (site, night) however many ask at once."""
    key = (site, night)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    with _computing:
        hit = _cache.get(key)
        if hit is None:
            hit = _ephemerides(site, night)
            _cache[key] = hit
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return hit


def clear_cache() -> None:
    with _computing:
        _cache.clear()


def _ephemerides(site: Site, night: dt.date) -> m.EphemeridesPublic:
    e = night_ephemerides(site, night)
    return m.EphemeridesPublic(
        site=e.site,
        night=e.night,
        sunset=e.sunset,
        sunrise=e.sunrise,
        civil_dusk=e.civil_dusk,
        civil_dawn=e.civil_dawn,
        nautical_dusk=e.nautical_dusk,
        nautical_dawn=e.nautical_dawn,
        astronomical_dusk=e.astronomical_dusk,
        astronomical_dawn=e.astronomical_dawn,
        midnight=e.midnight,
        moonrise=e.moonrise,
        moonset=e.moonset,
        moon_illumination=e.moon_illumination,
        moon_ra_deg=e.moon_ra_deg,
        moon_dec_deg=e.moon_dec_deg,
        planets=[
            m.PlanetPublic(
                name=p.name, ra_deg=p.ra_deg, dec_deg=p.dec_deg, max_altitude_deg=p.max_altitude_deg
            )
            for p in e.planets
        ],
    )


@router.get(
    "/ephemerides",
    summary="Sun, twilights, Moon and planets for a night at the site.",
    responses=problems(401, 422),
)
async def ephemerides(
    ctx: CtxDep,
    site: SiteDep,
    _user: UserDep,
    night: Annotated[
        dt.date | None, Query(description="Local date of the evening (YYYY-MM-DD); default: tonight.")
    ] = None,
) -> m.EphemeridesPublic:
    if night is not None and not FIRST <= night <= LAST:
        raise ProblemError(
            422,
            f"night must be within {FIRST}..{LAST}",
            kind="validation",
            errors=[("night", "out of range")],
        )
    now = ctx.clock.now()

    def work() -> m.EphemeridesPublic:
        return cached_ephemerides(site, night or tonight(site, now))

    return await run_in_threadpool(work)
