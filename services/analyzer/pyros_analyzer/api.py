"""GET /api/v1/requests/{id}/analysis: a request's images (calibration, WCS, zero point) and candidates.

The route reads only the data directory (``ANALYSIS/<request>/analysis.json``, written by the
analyzer after every image), so the gateway can mount it in another process on the same volume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from pyros_common.auth import CurrentUser
from pyros_common.problem import ProblemRoute, problems
from starlette.concurrency import run_in_threadpool


class AnalysisPublic(BaseModel):
    request_id: str = Field(description="Request id.")
    program: str = Field("", description="The request's program (empty when the analyzer has not learnt it).")
    images: list[dict[str, Any]] = Field(description="Each analysed image: calibrations, solve, zero point.")
    candidates: list[dict[str, Any]] = Field(description="Afterglow candidates (alert requests only).")
    voevents: list[str] = Field(default_factory=list, description="IVORNs of our VOEvents for this request.")


def analysis_file(data_dir: Path, request_id: str) -> Path:
    return data_dir / "ANALYSIS" / request_id / "analysis.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when there is none."""
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def routes(*, data_dir: Callable[[], Path], auth: Callable[..., Any]) -> APIRouter:
    router = APIRouter(tags=["analysis"], route_class=ProblemRoute, responses=problems(401, 404, 422))

    @router.get(
        "/requests/{request_id}/analysis", summary="A request's analysis: images, zero points, candidates."
    )
    async def analysis(
        request_id: Annotated[
            str,
            PathParam(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$", description="Request id."),
        ],
        user: CurrentUser = Depends(auth),
    ) -> AnalysisPublic:
        doc = await run_in_threadpool(read_json, analysis_file(data_dir(), request_id))
        if doc is None or not user.sees_program(str(doc.get("program") or "")):
            # Others' requests do not exist for the caller (as in routines' request routes).
            raise HTTPException(404, f"request {request_id} has no analysed image yet")
        return AnalysisPublic(**doc)

    return router
