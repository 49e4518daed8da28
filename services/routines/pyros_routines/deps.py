"""Route dependencies: the service context, the caller, the site, and publishing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pyros_common.auth import CurrentUser, current_user, require_role
from pyros_common.contracts import Event
from pyros_common.db import Database
from pyros_common.domain.sky.sites import Site, get_site
from pyros_common.runtime.service import ServiceContext
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

PRODUCER = "routines"


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def get_db(ctx: Annotated[ServiceContext, Depends(get_ctx)]) -> Database:
    if ctx.db is None:
        raise RuntimeError("routines needs a database")
    return ctx.db


def get_site_dep(ctx: Annotated[ServiceContext, Depends(get_ctx)]) -> Site:
    return get_site(ctx.settings.site)


CtxDep = Annotated[ServiceContext, Depends(get_ctx)]
DbDep = Annotated[Database, Depends(get_db)]
SiteDep = Annotated[Site, Depends(get_site_dep)]
UserDep = Annotated[CurrentUser, Depends(current_user)]
AdminDep = Annotated[CurrentUser, Depends(require_role("admin"))]


async def publish(ctx: ServiceContext, event: Event) -> None:
    """Stamp ``event`` as routines' (so routines' own consumer skips it) and publish it."""
    stamped = event.stamped(producer=PRODUCER, sent_at=ctx.clock.now())
    if event.telescope_id == "gft" and ctx.settings.telescope_id != "gft":
        stamped = stamped.model_copy(update={"telescope_id": ctx.settings.telescope_id})
    await ctx.bus.publish(type(event).topic, stamped, stamped.key())


async def in_session(db: Database, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``fn(session=..., **kwargs)`` in one transaction on a worker thread (SQL and astropy block)."""

    def work() -> T:  # again from the start if PostgreSQL picked it as a deadlock's victim
        return db.transaction(lambda s: fn(session=s, **kwargs))

    return await run_in_threadpool(work)
