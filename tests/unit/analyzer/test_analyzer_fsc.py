"""FSC instructions from EXTERNAL_ENTITIES/FSC/FROM/: parsed, forwarded, filed as done or rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from analyzer_factories import START
from pyros_analyzer.domain.instructions import ApiCall, BadInstruction, parse
from pyros_analyzer.fsc import FscInbox
from pyros_common.clock import SimulatedClock


def test_parse_the_two_instructions_and_refuse_the_rest() -> None:
    call = parse(
        b'{"type": "strategy_default", "mission": "SVOM", "packet_type": 202, "strategy": "svom_grb"}'
    )
    assert call == ApiCall("PUT", "/alerts/strategies/defaults/SVOM/202", {"strategy": "svom_grb"})
    off = parse(b'{"type": "strategy_active", "strategy": "fermi_gbm", "active": false}')
    assert off == ApiCall("POST", "/alerts/strategies/fermi_gbm/activate", {"active": False})
    for bad in (b"nope", b"[]", b'{"type": "reboot"}', b'{"type": "strategy_active", "strategy": "../x"}'):
        with pytest.raises(BadInstruction):
            parse(bad)


async def test_inbox_forwards_and_files_every_instruction(tmp_path: Path) -> None:
    calls: list[ApiCall] = []

    async def forward(call: ApiCall) -> tuple[int, str]:
        calls.append(call)
        return (404, "no strategy") if "ghost" in call.path else (200, "{}")

    inbox = FscInbox(tmp_path, forward=forward, clock=SimulatedClock(START), poll_s=1.0)
    (tmp_path / "a.json").write_text('{"type": "strategy_active", "strategy": "svom_grb"}')
    (tmp_path / "b.json").write_text('{"type": "strategy_active", "strategy": "ghost"}')
    (tmp_path / "c.json").write_text("{broken")
    (tmp_path / "d.json.tmp").write_text("{}")  # still being written: left alone
    assert await inbox.once() == 3
    assert [c.path for c in calls] == [
        "/alerts/strategies/svom_grb/activate",
        "/alerts/strategies/ghost/activate",
    ]
    assert (tmp_path / "done" / "a.json").is_file()
    assert "HTTP 404" in (tmp_path / "rejected" / "b.json.reason").read_text()
    assert "bad instruction" in (tmp_path / "rejected" / "c.json.reason").read_text()
    assert (tmp_path / "d.json.tmp").exists() and await inbox.once() == 0


async def test_without_an_api_the_instruction_is_rejected_with_the_reason(tmp_path: Path) -> None:
    inbox = FscInbox(tmp_path, forward=None, clock=SimulatedClock(START), poll_s=1.0)
    (tmp_path / "a.json").write_text('{"type": "strategy_active", "strategy": "svom_grb"}')
    await inbox.once()
    assert "no alerts API configured" in (tmp_path / "rejected" / "a.json.reason").read_text()
