"""Routines routes, one module per resource, mounted under /api/v1 by the gateway."""

from __future__ import annotations

from fastapi import APIRouter

from pyros_routines.api import ephemerides, login, programs, requests, users


def routes() -> APIRouter:
    """Every routines route; their dependencies (database, bus, clock) come from ``app.state.ctx``."""
    router = APIRouter()
    for module in (login, users, programs, requests, ephemerides):
        router.include_router(module.router)
    return router
