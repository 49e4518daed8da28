"""The observer rig fixture (see observer_factories)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from observer_factories import Rig, make_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = make_rig(tmp_path)
    await r.bus.start()
    await r.observer.on_start()
    yield r
    await r.observer.on_stop()
    await r.gateway.on_stop()
    await r.bus.stop()
