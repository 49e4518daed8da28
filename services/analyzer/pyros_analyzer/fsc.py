"""EXTERNAL_ENTITIES/FSC/FROM/: the FSC's instructions, forwarded to the alerts service's strategy API.

Each ``*.json`` file (the FSC writes ``.tmp`` and renames) is parsed, sent, and moved to
``FROM/done/`` or ``FROM/rejected/`` with a ``.reason`` file beside it, so nothing is acted on twice
and nothing is lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from pyros_common.clock import Clock

from pyros_analyzer.domain.instructions import ApiCall, BadInstruction, parse

log = structlog.get_logger("pyros.analyzer")
Forward = Callable[[ApiCall], Awaitable[tuple[int, str]]]


def http_forward(base_url: str, token: str, timeout_s: float = 10.0) -> Forward:
    """Calls on the REST API at ``base_url`` (…/api/v1) with a bearer token."""

    async def forward(call: ApiCall) -> tuple[int, str]:
        import httpx

        async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s) as client:
            r = await client.request(
                call.method, call.path, json=call.body, headers={"Authorization": f"Bearer {token}"}
            )
            return r.status_code, r.text[:500]

    return forward


class FscInbox:
    def __init__(self, folder: Path, *, forward: Forward | None, clock: Clock, poll_s: float) -> None:
        self.folder = folder
        self.forward = forward
        self.clock = clock
        self.poll_s = poll_s

    def _settle(self, f: Path, where: str, reason: str) -> None:
        dest = self.folder / where
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest / f.name)
        tmp = dest / f"{f.name}.reason.tmp"
        tmp.write_text(reason + "\n")
        os.replace(tmp, dest / f"{f.name}.reason")

    async def once(self) -> int:
        """Handle every instruction waiting; returns how many."""
        files = sorted(p for p in self.folder.glob("*.json") if p.is_file()) if self.folder.is_dir() else []
        for f in files:
            try:
                call = parse(await asyncio.to_thread(f.read_bytes))
            except BadInstruction as exc:
                self._settle(f, "rejected", f"bad instruction: {exc}")
                continue
            if self.forward is None:
                self._settle(f, "rejected", "no alerts API configured (PYROS_ANALYZER_ALERTS_API_URL/_TOKEN)")
                continue
            try:
                status, text = await self.forward(call)
            except Exception as exc:  # the API unreachable: try again next time
                log.warning("FSC instruction not forwarded", file=f.name, error=repr(exc))
                continue
            ok = 200 <= status < 300
            self._settle(f, "done" if ok else "rejected", f"{call.method} {call.path}: HTTP {status} {text}")
            log.info("FSC instruction", file=f.name, call=f"{call.method} {call.path}", status=status)
        return len(files)

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception:
                log.exception("FSC inbox failed")
            await self.clock.sleep(self.poll_s)
