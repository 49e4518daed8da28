"""Sequence execution as data: albums to run, dithers, focus, the outcome rule, the state table.

No bus, no files: the service's executor asks these functions what to do next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from pyros_common.domain.requests import Plan
from pyros_common.domain.requests import Sequence as RequestSequence

SequenceState = Literal["running", "completed", "failed", "interrupted"]

# A sequence runs, then ends one way; an interrupted one may be dispatched again (it resumes).
TRANSITIONS: Mapping[SequenceState | None, frozenset[SequenceState]] = {
    None: frozenset({"running", "failed"}),
    "running": frozenset({"completed", "failed", "interrupted"}),
    "interrupted": frozenset({"running", "failed"}),
    "completed": frozenset(),
    "failed": frozenset({"running"}),  # dispatched again on another night
}
ENDED: frozenset[SequenceState] = frozenset({"completed", "failed"})


class IllegalTransition(ValueError):
    """A sequence cannot go from one state to another."""


def transition(current: SequenceState | None, target: SequenceState) -> SequenceState:
    """``target`` when the table allows it; IllegalTransition otherwise."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"a sequence cannot go from {current or 'new'} to {target}")
    return target


@dataclass(frozen=True)
class AlbumRun:
    """One album as the executor runs it: its camera, its wheel and focuser, its plans."""

    album: str  # the album's name: its detector
    detector: Literal["VIS", "NIR"]
    camera: str
    wheel: str | None
    focuser: str | None
    plans: tuple[Plan, ...]
    moves_telescope: bool  # the cameras share one pointing: one album only dithers the mount


def album_runs(
    sequence: RequestSequence,
    *,
    cameras: Mapping[str, str],
    wheels: Mapping[str, str],
    focusers: Mapping[str, str],
    pointing_detector: str = "VIS",
) -> list[AlbumRun]:
    """The albums of ``sequence``; KeyError naming the detector that has no camera."""
    detectors = [a.detector.value for a in sequence.albums]
    pointing = pointing_detector if pointing_detector in detectors else (detectors[0] if detectors else "")
    out: list[AlbumRun] = []
    for a in sequence.albums:
        det = a.detector.value
        if det not in cameras:
            raise KeyError(f"no camera configured for detector {det}")
        out.append(
            AlbumRun(
                album=det,
                detector=cast(Literal["VIS", "NIR"], det),
                camera=cameras[det],
                wheel=wheels.get(det) or None,
                focuser=focusers.get(det) or None,
                plans=tuple(a.plans),
                moves_telescope=det == pointing,
            )
        )
    return out


def images_planned(albums: Sequence[AlbumRun]) -> int:
    return sum(p.count for a in albums for p in a.plans)


def dither_at(plan: Plan, k: int) -> tuple[float, float]:
    """Pointing offset of image ``k`` of ``plan`` [arcsec]: offset k mod len, none without dithers."""
    if not plan.dither_arcsec:
        return (0.0, 0.0)
    dx, dy = plan.dither_arcsec[k % len(plan.dither_arcsec)]
    return (float(dx), float(dy))


def offset_move(current: tuple[float, float], wanted: tuple[float, float]) -> tuple[float, float] | None:
    """The relative move from ``current`` to ``wanted`` [arcsec]; None when already there."""
    d = (wanted[0] - current[0], wanted[1] - current[1])
    return None if abs(d[0]) < 1e-6 and abs(d[1]) < 1e-6 else d


def offset_pointing(ra_deg: float, dec_deg: float, offset: tuple[float, float]) -> tuple[float, float]:
    """Where the cameras point with ``offset`` (dRA cos dec, dDec) [arcsec] from (ra, dec) [deg]."""
    dec = max(-90.0, min(90.0, dec_deg + offset[1] / 3600.0))
    cos_dec = max(1e-6, math.cos(math.radians(dec_deg)))
    ra = (ra_deg + offset[0] / 3600.0 / cos_dec) % 360.0
    return (ra if ra < 360.0 else 0.0, dec)


def focus_position(base: int, offsets: Mapping[str, int], filter_name: str) -> int:
    """Focuser position for ``filter_name`` [steps]: best CLEAR focus plus the filter's offset."""
    return max(0, base + int(offsets.get(filter_name, 0)))


def exposure_timeout(exposure_s: float, readout_s: float, margin_s: float) -> float:
    """How long one expose may take before it counts as failed [s]."""
    return exposure_s + readout_s + margin_s


@dataclass(frozen=True)
class PlanFailure:
    album: str
    plan_index: int
    filter: str
    reason: str

    def describe(self) -> str:
        return f"{self.album} plan {self.plan_index + 1} ({self.filter}): {self.reason}"


def outcome(
    *, images_done: int, failures: Sequence[PlanFailure], dropped: Mapping[str, str]
) -> tuple[Literal["completed", "failed"], str]:
    """Completed when any image was taken, failed otherwise; the reason says what failed."""
    parts = [f"album {album} dropped: {why}" for album, why in dropped.items()]
    if failures:
        parts.append("plans failed: " + "; ".join(f.describe() for f in failures))
    if images_done == 0:
        return "failed", "no image taken" + (": " + "; ".join(parts) if parts else "")
    return "completed", "; ".join(parts)


def reason_label(reason: str) -> str:
    """A low-cardinality label for a plan failure (the full text goes in the event)."""
    r = reason.lower()
    if "offline" in r or "no power" in r:
        return "device_offline"
    if "timed out" in r or "did not answer" in r:
        return "timeout"
    if "image" in r and ("missing" in r or "not found" in r or "outside" in r or "cannot file" in r):
        return "image_filing"
    if "refused" in r or "failed" in r or "error" in r:
        return "device_error"
    return "other"


CALIBRATION_TYPES: tuple[str, ...] = ("bias", "dark", "flat")


@dataclass(frozen=True)
class CalibrationPlan:
    image_type: Literal["bias", "dark", "flat"]
    exposure_s: float
    count: int


def calibration_plans(frames: Mapping[str, int], *, dark_s: float, flat_s: float) -> list[CalibrationPlan]:
    """The frames asked for, in the order given; ValueError for an unknown type or a negative count."""
    out: list[CalibrationPlan] = []
    for kind, count in frames.items():
        if kind not in CALIBRATION_TYPES:
            raise ValueError(f"unknown calibration frame type {kind!r}; known: {list(CALIBRATION_TYPES)}")
        if count < 0:
            raise ValueError(f"negative count of {kind} frames: {count}")
        exp = 0.0 if kind == "bias" else dark_s if kind == "dark" else flat_s
        out.append(CalibrationPlan(kind, exp, count))  # type: ignore[arg-type]
    return out
