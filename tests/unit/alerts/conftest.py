"""Fixtures for the alerts unit tests."""

from __future__ import annotations

import pytest
from alerts_factories import manifest_rows


@pytest.fixture
def manifest() -> list[dict[str, str]]:
    return manifest_rows()
