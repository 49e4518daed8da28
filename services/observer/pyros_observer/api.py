"""POST /api/v1/requests/{id}/download: a request's images gathered in DOWNLOAD/ as hard links.

The route reads only the data directory (the observer's manifest names the request's owner), so
the gateway can mount it in another process than the observer's, on the same data volume.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from pyros_common.auth import CurrentUser
from pyros_common.clock import Clock
from pyros_common.problem import ProblemRoute, problems
from starlette.concurrency import run_in_threadpool

from pyros_observer.filing import gather_download, request_owner


class DownloadPublic(BaseModel):
    request_id: str = Field(description="Request id.")
    path: str = Field(description="Folder of the gathered images, relative to the data directory.")
    files: int = Field(ge=0, description="Number of images in it.")
    links: str = Field("hard", description="How the images are there: hard links (no copy).")


def routes(*, data_dir: Callable[[], Path], clock: Clock, auth: Callable[..., Any]) -> APIRouter:
    """Routes of the observer; ``auth`` is the dependency that gives the caller (a CurrentUser)."""
    router = APIRouter(
        tags=["observations"], route_class=ProblemRoute, responses=problems(401, 403, 404, 422)
    )

    @router.post(
        "/requests/{request_id}/download",
        summary="Gather a request's images in DOWNLOAD/<request>-<time>/ (owner, admin or expert).",
    )
    async def download(
        request_id: Annotated[str, PathParam(min_length=1, max_length=200, description="Request id.")],
        user: CurrentUser = Depends(auth),  # ``auth`` is a closure: annotations cannot name it
    ) -> DownloadPublic:
        root = data_dir()
        owner = await run_in_threadpool(request_owner, root, request_id)
        if owner is None:
            raise HTTPException(404, f"request {request_id} has no images yet")
        if owner != user.username and not user.sees_all:
            raise HTTPException(
                403, f"request {request_id} is not yours; its owner, an admin or an expert may"
            )
        rel, count = await run_in_threadpool(gather_download, root, request_id, clock.now())
        return DownloadPublic(request_id=request_id, path=str(rel), files=count)

    return router
