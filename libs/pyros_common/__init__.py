"""PyROS common library: contracts, domain, bus, clock, database, settings, logging and metrics.

Importing this package is cheap: it loads neither astropy nor the IERS tables. Every module
that uses astropy's time transforms calls :func:`pyros_common._iers.configure_offline_iers`
at its own import, which pins astropy to the IERS tables shipped in ``data/iers`` so that no
PyROS process ever reaches the network for Earth-orientation data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyros_common._iers import configure_offline_iers

__all__ = ["configure_offline_iers"]


def __getattr__(name: str) -> Any:
    # ``pyros_common.configure_offline_iers`` still works, without importing astropy up front.
    if name == "configure_offline_iers":
        from pyros_common._iers import configure_offline_iers

        return configure_offline_iers
    raise AttributeError(f"module 'pyros_common' has no attribute {name!r}")
