"""The Tycho-2 stars for the image tests: installed by `scripts/astrometry.sh ensure`.

Without them the image tests skip on a workstation and fail under CI=true (never a silent skip).
"""

from __future__ import annotations

import os

import pytest
from pyros_simulators import CatalogueMissing, Tycho2, default_tycho2


@pytest.fixture(scope="session")
def tycho2() -> Tycho2:
    try:
        return default_tycho2()
    except CatalogueMissing as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc} (CI=true: the image tests never skip)")
        pytest.skip(str(exc))
