"""Instructions the FSC drops into EXTERNAL_ENTITIES/FSC/FROM/: parsed and turned into API calls."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class BadInstruction(ValueError):
    """An instruction we cannot act on; the message says why."""


@dataclass(frozen=True)
class ApiCall:
    """What the alerts service's strategy API is asked to do."""

    method: str
    path: str  # under /api/v1
    body: dict[str, Any]


def parse(blob: bytes) -> ApiCall:
    """``{"type": "strategy_default", "mission", "packet_type", "strategy"}`` or
    ``{"type": "strategy_active", "strategy", "active"}``."""
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInstruction(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadInstruction("an instruction is a JSON object")
    kind = doc.get("type")

    def name(key: str) -> str:
        v = doc.get(key)
        if not isinstance(v, str | int) or not _NAME.match(str(v)):
            raise BadInstruction(f"{key!r} missing or not a plain name")
        return str(v)

    if kind == "strategy_default":
        return ApiCall(
            "PUT",
            f"/alerts/strategies/defaults/{name('mission')}/{name('packet_type')}",
            {"strategy": name("strategy")},
        )
    if kind == "strategy_active":
        active = doc.get("active", True)
        if not isinstance(active, bool):
            raise BadInstruction("'active' must be true or false")
        return ApiCall("POST", f"/alerts/strategies/{name('strategy')}/activate", {"active": active})
    raise BadInstruction(f"unknown instruction type {kind!r} (strategy_default, strategy_active)")
