"""HTTP surfaces: each service's /healthz, /readyz, /metrics, and the uvicorn runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Generator, Mapping
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pyros_common.runtime.service import LifecycleState, Service
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB, MIB = 1024, 1024 * 1024

# Largest body each route prefix takes (the longest matching prefix wins). VOEvents: a packet is at
# most 1 MB (the alerts parser's own limit, below which it dead-letters with a reason); request
# documents: 100 sequences with their albums fit in a few MB; credentials and accounts are small.
BODY_LIMITS: Mapping[str, int] = {
    "": 1 * MIB,
    "/api/v1/alerts/voevents": 1 * MIB,
    "/api/v1/requests": 4 * MIB,
    "/api/v1/login": 16 * KIB,
    "/api/v1/users": 64 * KIB,
    "/api/v1/programs": 64 * KIB,
}


# After a 413, what the client still sends is read and dropped, at most this much for this long.
LINGER_BYTES = 64 * MIB
LINGER_S = 5.0


class BodyTooLarge(Exception):
    """Raised into the application when a body passes its limit while being read."""


def _limit_for(path: str, limits: Mapping[str, int]) -> int:
    best = ""
    for prefix in limits:
        if (path == prefix or path.startswith(prefix.rstrip("/") + "/") or not prefix) and len(prefix) >= len(
            best
        ):
            best = prefix
    return limits[best]


class BodyLimit:
    """ASGI middleware: refuse a body larger than its route's limit with 413 problem+json.

    A declared ``Content-Length`` over the limit is refused before reading anything; otherwise the
    bytes are counted as they arrive and the answer is sent as soon as the count passes the limit,
    so a client never makes the process hold more than the limit (plus one chunk) of its body.
    """

    def __init__(self, app: ASGIApp, limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limits = dict(BODY_LIMITS if limits is None else limits)
        self.limits.setdefault("", 1 * MIB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _limit_for(scope.get("path", ""), self.limits)
        declared = self._content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit, declared)
            await self._linger(receive, send)
            return
        received = 0
        refused = False
        answered = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused, answered
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self._refuse(send, limit, None)
                        answered = True
                    raise BodyTooLarge(f"body over {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out already; whatever the app answers is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # BodyTooLarge, or the app stumbling over the cut-off body: the 413 is the answer.
        if answered:
            await self._linger(receive, send)

    @staticmethod
    async def _linger(receive: Receive, send: Send) -> None:
        """Discard what the client still sends (bounded), then end the answer and the connection.

        The 413 is complete for the client already (it has a Content-Length); closing a socket
        with unread bytes would reset it, and the client could lose the answer with the reset.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_S
        drained = 0
        with contextlib.suppress(TimeoutError, OSError):
            while drained < LINGER_BYTES:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - loop.time()))
                if message["type"] != "http.request":
                    break
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    def _content_length(scope: Scope) -> int | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    @staticmethod
    async def _refuse(send: Send, limit: int, declared: int | None) -> None:
        got = f"{declared} bytes declared" if declared is not None else "more was sent"
        body = json.dumps(
            {
                "type": "urn:pyros:problem:body-too-large",
                "title": "Payload Too Large",
                "status": 413,
                "detail": f"the body of this route is limited to {limit} bytes ({got})",
                "errors": [{"field": "(body)", "message": f"at most {limit} bytes"}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        # more_body: the answer is whole (Content-Length) but the exchange stays open for _linger.
        await send({"type": "http.response.body", "body": body, "more_body": True})


def limit_bodies(app: FastAPI, limits: Mapping[str, int] | None = None) -> FastAPI:
    """Put the body limit in front of every route of ``app``."""
    app.add_middleware(BodyLimit, limits=limits)
    return app


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
    return limit_bodies(app)


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
