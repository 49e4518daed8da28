"""The scheduler service: wiring of its handlers, routes and the night loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from pyros_common.auth import current_user
from pyros_common.bus.port import Handler
from pyros_common.contracts import AlertChanged, ObservationChanged, RequestChanged, SystemChanged
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import Service, ServiceContext

from pyros_scheduler.api import routes
from pyros_scheduler.book import NightBook
from pyros_scheduler.handlers import SchedulerHandlers, load_pool
from pyros_scheduler.planner import Program

if TYPE_CHECKING:
    from fastapi import APIRouter

log = structlog.get_logger("pyros.scheduler")


def default_auth() -> Callable[..., Any]:
    """Every schedule route needs a token."""
    return current_user


class SchedulerService(Service):
    """Keeps the night's pool and plan; publishes a new schedule version on every change."""

    name = "scheduler"
    needs_db = True

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        telescopes: Sequence[str] | None = None,
        programs: Callable[[], Mapping[str, Program]] | None = None,
        unsafe_hold_s: float = 1800.0,
        auth_dependency: Callable[..., Any] | None = None,
        night_loop: bool = True,
    ) -> None:
        super().__init__(ctx)
        self.site = get_site(ctx.settings.site)
        self.book = NightBook(
            site=self.site,
            telescopes=telescopes or self._default_telescopes(ctx),
            programs=programs or dict,
            unsafe_hold_s=unsafe_hold_s,
            monotonic=ctx.clock.monotonic,
        )
        self._auth = auth_dependency if auth_dependency is not None else default_auth()
        self._night_loop = night_loop
        self._handlers: SchedulerHandlers | None = None
        self._task: asyncio.Task[None] | None = None

    def _default_telescopes(self, ctx: ServiceContext) -> tuple[str, ...]:
        """A site file listing several telescopes makes this scheduler plan that node."""
        if len(self.site.telescopes) > 1:
            return tuple(t.id for t in self.site.telescopes)
        return (ctx.settings.telescope_id,)

    @property
    def handlers(self) -> SchedulerHandlers:
        if self._handlers is None:
            self._handlers = SchedulerHandlers(
                book=self.book, db=self.db, clock=self.clock, publish=self.publish
            )
        return self._handlers

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        h = self.handlers
        return [
            (RequestChanged.topic, h.on_request),
            (AlertChanged.topic, h.on_alert),
            (SystemChanged.topic, h.on_system),
            (ObservationChanged.topic, h.on_observation),
        ]

    def router(self) -> APIRouter:
        return routes(
            db=lambda: self.db,
            current_night=lambda: self.book.night,
            default_telescope=self.book.telescopes[0],
            auth=self._auth,
        )

    async def on_start(self) -> None:
        now = self.clock.now()
        # Cold start from the scheduler's own pool table, never from routines' tables.
        for request, grade in load_pool(self.db):
            self.book.add(request, now, grade=grade)
        await self.handlers.roll_over()
        if self._night_loop:
            # Without majordome (``pyros schedule``-like deployments) the night still rolls over.
            self._task = asyncio.create_task(self._nights(), name="scheduler-nights")

    async def _nights(self) -> None:
        """A safety net: at each dawn, carry over if majordome has not said "day" already."""
        while True:
            plan = self.book.plan
            wait = 3600.0 if plan is None else (plan.dawn - self.clock.now()).total_seconds() + 600.0
            await self.clock.sleep(max(1.0, wait))
            try:
                await self.handlers.roll_over()
            except Exception:
                log.exception("night roll-over failed")

    async def on_stop(self) -> None:
        if self._handlers is not None:
            for task in list(self._handlers._improving):
                task.cancel()
            await self._handlers.idle()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
