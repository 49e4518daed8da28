"""Routines routes, one module per resource, mounted under /api/v1 by the gateway."""

from __future__ import annotations

from fastapi import APIRouter

from pyros_routines.api import ephemerides, login, programs, requests, users


def build_router() -> APIRouter:
    """Every routines route."""
    router = APIRouter()
    for module in (login, users, programs, requests, ephemerides):
        router.include_router(module.router)
    return router
