"""HTTP surfaces: each service's /healthz, /readyz, /metrics, and the uvicorn runner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pyros_common.runtime.service import LifecycleState, Service


def ops_router(services: list[Service], registry: CollectorRegistry) -> APIRouter:
    """/healthz (alive), /readyz (ENABLED), /metrics (Prometheus text)."""
    r = APIRouter(tags=["operations"])

    @r.get("/healthz", summary="Liveness: the process answers.")
    async def healthz() -> dict[str, Any]:
        return {"status": "alive", "services": {s.name: s.state.value for s in services}}

    @r.get(
        "/readyz",
        summary="Readiness: every hosted service is ENABLED.",
        responses={
            503: {"description": "Not ready: a service is STANDBY or FAULT (body says which and why)."}
        },
    )
    async def readyz() -> Response:
        ready = all(s.state is LifecycleState.ENABLED for s in services)
        body = {
            "ready": ready,
            "services": {s.name: {"state": s.state.value, "reason": s.reason} for s in services},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @r.get(
        "/metrics",
        summary="Prometheus metrics.",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return r


def service_app(services: list[Service], registry: CollectorRegistry) -> FastAPI:
    app = FastAPI(title=f"PyROS {', '.join(s.name for s in services)}", docs_url=None, redoc_url=None)
    app.include_router(ops_router(services, registry))
    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal capture: the PyROS host owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """uvicorn inside our event loop; our host handles the signals."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        cfg = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self.server = _QuietServer(cfg)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("HTTP server failed to start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
