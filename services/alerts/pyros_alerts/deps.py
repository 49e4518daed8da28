"""API dependencies: who may call the alerts routes.

Authentication belongs to routines (``pyros_common.auth``). Until it is there, routes that
need a role answer 501 rather than being open.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, status


def require_roles(*roles: str) -> Callable[..., Any]:
    """A FastAPI dependency admitting only users with one of ``roles``."""
    try:
        auth = importlib.import_module("pyros_common.auth")
    except ImportError:
        auth = None
    require_role = getattr(auth, "require_role", None) if auth is not None else None
    if require_role is not None:
        dependency: Callable[..., Any] = require_role(*roles)
        return dependency

    async def unavailable() -> None:
        raise HTTPException(
            status_code=status.HTTP_501_NOT_IMPLEMENTED,
            detail="authentication (pyros_common.auth) is not installed; "
            f"this route needs role {' or '.join(roles)}",
        )

    return unavailable
