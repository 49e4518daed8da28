"""End-to-end tier: ``pyros up`` (and ``pyros run <service>`` on Kafka) as real processes.

The fixtures start the processes, wait for ``GET /api/v1/health``, make an admin user with the
command line, log in over HTTP, and stop the processes with SIGINT at the end. When a test
fails, the tail of every process log is added to its report.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import STARTED, PyrosUp, start_pyros_up


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.failed:
        for p in STARTED:
            rep.sections.append((f"{p.name} log", p.tail(120)))


@pytest.fixture(scope="module")
def pyros_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PyrosUp]:
    """One ``pyros up`` for the module (tests may restart it), stopped with SIGINT at the end."""
    root = tmp_path_factory.mktemp("pyros-up")
    up: PyrosUp | None = None
    try:
        up = start_pyros_up(root)
        yield up
    finally:
        if up is not None:
            up.api.close()
            try:
                up.proc.stop()
            finally:
                STARTED.remove(up.proc)
        else:  # it did not start: stop it, but keep it listed so that the error shows its log
            for p in [p for p in STARTED if p.log_path.is_relative_to(root)]:
                p.stop()
