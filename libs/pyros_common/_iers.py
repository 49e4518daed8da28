"""Offline IERS configuration for astropy (call it before any astropy time transform)."""

from __future__ import annotations

from pathlib import Path

_DATA = Path(__file__).parent / "data" / "iers"
_done = False


def configure_offline_iers() -> None:
    """Forbid IERS downloads and load the Earth-orientation table shipped with PyROS."""
    global _done
    if _done:
        return
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    table = iers.IERS_A.open(str(_DATA / "finals2000A.all"))
    iers.earth_orientation_table.set(table)
    _done = True
