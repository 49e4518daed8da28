"""PyROS common library: contracts, domain, bus, clock, database, settings, logging and metrics.

Importing this package pins astropy to the IERS tables shipped in ``data/iers`` so that
no PyROS process ever reaches the network for Earth-orientation data.
"""

from pyros_common._iers import configure_offline_iers

configure_offline_iers()

__all__ = ["configure_offline_iers"]
