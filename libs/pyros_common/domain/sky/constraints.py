"""Observing constraints of a target: the limits every service applies, with one set of defaults.

Pure and light (no astropy): the vectorised evaluation lives in ``sky.visibility``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Constraints"]


@dataclass(frozen=True)
class Constraints:
    """Observing constraints of one target. Unset optional limits are not applied."""

    min_altitude_deg: float = 30.0
    max_airmass: float | None = None
    min_moon_separation_deg: float | None = None
    max_moon_illumination: float | None = None

    def __post_init__(self) -> None:
        if not -90.0 <= self.min_altitude_deg < 90.0:
            raise ValueError(f"min_altitude_deg {self.min_altitude_deg} outside [-90, 90)")
        if self.max_airmass is not None and self.max_airmass < 1.0:
            raise ValueError(f"max_airmass {self.max_airmass} is below 1 (the zenith)")
        if self.min_moon_separation_deg is not None and not 0.0 <= self.min_moon_separation_deg <= 180.0:
            raise ValueError(f"min_moon_separation_deg {self.min_moon_separation_deg} outside [0, 180]")
        if self.max_moon_illumination is not None and not 0.0 <= self.max_moon_illumination <= 1.0:
            raise ValueError(f"max_moon_illumination {self.max_moon_illumination} outside [0, 1]")

    @property
    def airmass_altitude_deg(self) -> float:
        """The altitude at which airmass (sec z) equals ``max_airmass``; -90 without a limit."""
        if self.max_airmass is None:
            return -90.0
        return math.degrees(math.asin(1.0 / self.max_airmass))
