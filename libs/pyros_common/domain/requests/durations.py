"""Telescope overheads and how long a sequence takes.

A sequence's albums run in parallel: on the GFT the VIS and NIR cameras sit behind a
dichroic and expose at the same time on the same pointing. So

    sequence duration = slew + max over albums of album duration
    album duration    = sum over plans of count * (exposure + readout)
                        + filter changes * filter_change_s + dither moves * dither_move_s

Filter changes: one per plan whose filter differs from the previous plan's, and one for the
first plan (the wheel's previous position is unknown). Dither moves: exposures of a plan
cycle through its dither offsets; one move whenever the offset changes between consecutive
exposures, plus one before the first exposure if its offset is not [0, 0].
"""

from __future__ import annotations

from pyros_common.domain.requests.model import Album, Plan, Sequence
from pyros_common.domain.sky.overheads import Overheads

__all__ = [
    "album_duration_s",
    "dither_moves",
    "on_target_duration_s",
    "plan_duration_s",
    "sequence_duration_s",
]


def dither_moves(plan: Plan) -> int:
    """Telescope offsets made while taking ``plan`` (see module docstring)."""
    offsets = plan.dither_arcsec or ((0.0, 0.0),)
    moves = 0 if tuple(offsets[0]) == (0.0, 0.0) else 1
    for k in range(1, plan.count):
        if tuple(offsets[k % len(offsets)]) != tuple(offsets[(k - 1) % len(offsets)]):
            moves += 1
    return moves


def plan_duration_s(plan: Plan, detector: str, overheads: Overheads) -> float:
    """Exposures, readouts and dither moves of one plan (no filter change)."""
    return (
        plan.count * (plan.exposure_s + overheads.readout(detector))
        + dither_moves(plan) * overheads.dither_move_s
    )


def album_duration_s(album: Album, overheads: Overheads) -> float:
    """One detector's share of a sequence: its plans plus its filter changes."""
    total, previous = 0.0, None
    for plan in album.plans:
        if plan.filter != previous:
            total += overheads.filter_change_s
            previous = plan.filter
        total += plan_duration_s(plan, album.detector, overheads)
    return total


def sequence_duration_s(sequence: Sequence, overheads: Overheads) -> float:
    """Slew plus the longest album (albums on different detectors run in parallel)."""
    return overheads.slew_s + max((album_duration_s(a, overheads) for a in sequence.albums), default=0.0)


def on_target_duration_s(sequence: Sequence, overheads: Overheads) -> float:
    """The sequence once pointed: its albums, without the slew (the scheduler's transitions
    carry the slew from the previous target). At least one second."""
    return max(1.0, sequence_duration_s(sequence, overheads) - overheads.slew_s)
