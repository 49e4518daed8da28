"""RFC 9457 problem details (``application/problem+json``) for every PyROS route.

The gateway app belongs to no single service, so the conversion lives in a route class:
``ProblemRoute`` turns HTTP errors, validation errors and ``ProblemError`` raised by a route
or its dependencies into problem+json, naming the field that failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:pyros:problem:"
# JSON bodies larger than this are parsed on a worker thread, so that health answers stay fast.
OFFLOAD_JSON_BYTES = 64 * 1024


class FieldError(BaseModel):
    field: str = Field(description="Path of the field that failed, e.g. 'sequences.0.target.dec_deg'.")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field("about:blank", description="URI identifying the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field("", description="What went wrong this time, for a person.")
    errors: list[FieldError] = Field(default_factory=list, description="The fields that failed.")


class ProblemError(Exception):
    """Raised by service functions; becomes a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Iterable[tuple[str, str]] = (),
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title
        self.errors = [FieldError(field=f, message=m) for f, m in errors]

    def problem(self) -> Problem:
        return Problem(
            type=TYPE_BASE + self.kind if self.kind else "about:blank",
            title=self.title or HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )


def _loc(loc: Sequence[int | str], drop_source: bool) -> str:
    parts = [str(p) for p in loc]
    if drop_source and parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts) or "(root)"


def field_errors(errors: Iterable[Any], *, drop_source: bool = True) -> list[tuple[str, str]]:
    """(field, message) pairs from pydantic/FastAPI error dicts."""
    out = []
    for e in errors:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        out.append((_loc(e.get("loc", ()), drop_source), msg))
    return out


def validation_problem(exc: ValidationError | RequestValidationError, prefix: str = "") -> ProblemError:
    """422 naming every field that failed."""
    errs = field_errors(exc.errors())
    if prefix:
        errs = [(f"{prefix}.{f}" if f != "(root)" else prefix, m) for f, m in errs]
    first = f"{errs[0][0]}: {errs[0][1]}" if errs else "invalid input"
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return ProblemError(422, first + more, kind="validation", title="Invalid input", errors=errs)


def problem_response(p: ProblemError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        p.problem().model_dump(mode="json"), status_code=p.status, media_type=MEDIA_TYPE, headers=headers
    )


class ProblemRoute(APIRoute):
    """An APIRoute whose errors are problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                await _parse_large_json(request)
                return await original(request)
            except ProblemError as exc:
                return problem_response(exc)
            except RequestValidationError as exc:
                return problem_response(validation_problem(exc))
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
                kind = {401: "unauthorized", 403: "forbidden", 404: "not-found"}.get(exc.status_code)
                return problem_response(ProblemError(exc.status_code, detail, kind=kind), exc.headers)

        return handler


async def _parse_large_json(request: Request) -> None:
    """Parse a large JSON body on a worker thread; FastAPI then finds it parsed (``Request.json``)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if not request.headers.get("content-type", "").startswith("application/json"):
        return
    body = await request.body()
    if len(body) <= OFFLOAD_JSON_BYTES:
        return
    try:
        request._json = await run_in_threadpool(json.loads, body)
    except ValueError:
        return  # FastAPI parses it again and answers 400 naming the position


def _content() -> dict[str, Any]:
    return {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem+json for ``statuses`` (and 400: unreadable body)."""
    out: dict[int | str, dict[str, Any]] = {}
    for s in sorted({400, *statuses}):
        out[s] = {"model": Problem, "description": HTTPStatus(s).phrase, "content": _content()}
    return out
