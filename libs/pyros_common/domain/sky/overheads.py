"""Telescope overhead profiles: slew, filter change, readout and dither move times (seconds).

A site's telescopes name a profile (``Telescope.overheads``); ``requests.durations`` turns a
sequence and a profile into the time the sequence takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_PROFILE", "OVERHEADS", "Overheads", "node_overheads", "overheads_for"]


@dataclass(frozen=True)
class Overheads:
    """Per-telescope overheads (seconds). ``readout_s_by_detector`` overrides ``readout_s``."""

    slew_s: float
    filter_change_s: float
    readout_s: float
    dither_move_s: float
    readout_s_by_detector: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        values = {
            "slew_s": self.slew_s,
            "filter_change_s": self.filter_change_s,
            "readout_s": self.readout_s,
            "dither_move_s": self.dither_move_s,
            **{f"readout_s_by_detector[{k}]": v for k, v in self.readout_s_by_detector.items()},
        }
        for name, value in values.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def readout(self, detector: str) -> float:
        """Readout time (s) of ``detector``."""
        return self.readout_s_by_detector.get(detector, self.readout_s)


# Placeholder GFT figures until measured on the sky (slew: typical 60° move plus settling).
OVERHEADS: dict[str, Overheads] = {
    "gft-spm": Overheads(
        slew_s=90.0,
        filter_change_s=10.0,
        readout_s=5.0,
        dither_move_s=8.0,
        readout_s_by_detector=MappingProxyType({"VIS": 5.0, "NIR": 1.5}),
    ),
}

DEFAULT_PROFILE = "gft-spm"


def overheads_for(profile: str) -> Overheads:
    """The overhead profile ``profile``; KeyError naming the known ones otherwise."""
    try:
        return OVERHEADS[profile]
    except KeyError:
        raise KeyError(f"unknown overhead profile {profile!r}; known: {sorted(OVERHEADS)}") from None


def node_overheads(profiles: Iterable[str]) -> Overheads:
    """Field by field, the largest overheads of these profiles (a plan valid on the slowest
    telescope of a node is valid on all of them); the default profile when there are none."""
    found = [overheads_for(p) for p in profiles] or [OVERHEADS[DEFAULT_PROFILE]]
    if len(found) == 1:
        return found[0]
    detectors = sorted({d for p in found for d in p.readout_s_by_detector})
    return Overheads(
        slew_s=max(p.slew_s for p in found),
        filter_change_s=max(p.filter_change_s for p in found),
        readout_s=max(p.readout_s for p in found),
        dither_move_s=max(p.dither_move_s for p in found),
        readout_s_by_detector=MappingProxyType({d: max(p.readout(d) for p in found) for d in detectors}),
    )
