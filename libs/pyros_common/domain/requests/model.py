"""Astronomers' requests: request -> sequences -> albums (one per detector) -> plans.

Immutable pydantic models: every field carries a description and its unit, and a
validation error names the offending field. The JSON document format built on them
(schema "pyros.request/1") lives in ``document.py``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pyros_common.domain.sky.constraints import DEFAULT_MAX_AIRMASS, DEFAULT_MIN_ALTITUDE_DEG, Constraints

__all__ = [
    "MAX_NIGHTS_AHEAD",
    "MAX_SEQUENCES",
    "Album",
    "Detector",
    "Plan",
    "Request",
    "RequestContent",
    "RequestKind",
    "Sequence",
    "SequenceConstraints",
    "Strategy",
    "Target",
    "Text",
]

MAX_NIGHTS_AHEAD = 7
MAX_SEQUENCES = 100
_MODEL = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)


def no_nul(value: str) -> str:
    """Refuse text holding a NUL character (C libraries, FITS headers and PostgreSQL choke on it)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def at_most(limit: int) -> BeforeValidator:
    """Refuse a list longer than ``limit`` before its items are validated (pydantic's own
    ``max_length`` counts after validating every item, so a huge list would cost its full price)."""

    def check(value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) > limit:
            raise PydanticCustomError(
                "too_long",
                "List should have at most {max_length} items, not {actual_length}",
                {"max_length": limit, "actual_length": len(value)},
            )
        return value

    return BeforeValidator(check)


# Text as it may appear in a document: strict str (no number coerced), without NUL.
Text = Annotated[str, Field(strict=True), AfterValidator(no_nul)]
Name = Annotated[Text, Field(min_length=1, max_length=128, pattern=r"\S")]


class Detector(StrEnum):
    """A camera of the telescope. On the GFT both sit behind a dichroic and expose together."""

    VIS = "VIS"
    NIR = "NIR"


class Strategy(StrEnum):
    """What counts as success for a request with several sequences."""

    BEST_EFFORT = "best_effort"  # every sequence observed is kept
    ALL_OR_NOTHING = "all_or_nothing"  # schedule all sequences of the request or none


class RequestKind(StrEnum):
    """Where a request comes from."""

    ROUTINE = "routine"  # submitted by an astronomer
    ALERT = "alert"  # made from an alert (e.g. a GRB VOEvent)


class Target(BaseModel):
    """A fixed target, ICRS coordinates."""

    model_config = _MODEL

    name: Name = Field(description="Target name, e.g. 'M31' or 'GRB 240101A'.")
    ra_deg: float = Field(
        strict=True, ge=0.0, lt=360.0, description="Right ascension, ICRS, degrees [0, 360)."
    )
    dec_deg: float = Field(
        strict=True, ge=-90.0, le=90.0, description="Declination, ICRS, degrees [-90, 90]."
    )


class SequenceConstraints(BaseModel):
    """When a sequence may be observed. An absent (null) optional limit is not applied."""

    model_config = _MODEL

    min_altitude_deg: float = Field(
        default=DEFAULT_MIN_ALTITUDE_DEG,
        strict=True,
        ge=0.0,
        lt=90.0,
        description="Lowest altitude above the horizon, degrees.",
    )
    max_airmass: float | None = Field(
        default=DEFAULT_MAX_AIRMASS,
        strict=True,
        ge=1.0,
        le=10.0,
        description="Highest airmass (sec z), dimensionless; null: no limit.",
    )
    min_moon_separation_deg: float | None = Field(
        default=None,
        strict=True,
        ge=0.0,
        le=180.0,
        description="Smallest angular distance to the Moon, degrees.",
    )
    max_moon_illumination: float | None = Field(
        default=None,
        strict=True,
        ge=0.0,
        le=1.0,
        description="Highest illuminated fraction of the Moon (0 new, 1 full), applied while it is up.",
    )

    def to_visibility(self) -> Constraints:
        """The same limits as the visibility module's constraints."""
        return Constraints(
            min_altitude_deg=self.min_altitude_deg,
            max_airmass=self.max_airmass,
            min_moon_separation_deg=self.min_moon_separation_deg,
            max_moon_illumination=self.max_moon_illumination,
        )


Offset = Annotated[
    tuple[
        Annotated[float, Field(strict=True, ge=-600.0, le=600.0)],
        Annotated[float, Field(strict=True, ge=-600.0, le=600.0)],
    ],
    at_most(2),
]


class Plan(BaseModel):
    """Identical exposures through one filter, cycling through the dither offsets."""

    model_config = _MODEL

    filter: str = Field(
        strict=True,
        min_length=1,
        max_length=16,
        pattern=r"^[A-Za-z0-9_+'-]+$",
        description="Filter name, e.g. 'r' or 'J'.",
    )
    exposure_s: float = Field(
        strict=True, gt=0.0, le=3600.0, description="Exposure time of one image, seconds."
    )
    count: int = Field(strict=True, ge=1, le=1000, description="Number of images.")
    dither_arcsec: Annotated[list[Offset], at_most(100)] = Field(
        default_factory=list,
        max_length=100,
        description="Pointing offsets [dx, dy], arcseconds (each within ±600). Image k is taken at "
        "offset k mod len(list). Empty: no dithering.",
    )


class Album(BaseModel):
    """The plans taken with one detector."""

    model_config = _MODEL

    detector: Detector = Field(description="Camera taking this album: VIS or NIR.")
    plans: Annotated[list[Plan], at_most(50)] = Field(
        min_length=1, max_length=50, description="Plans, in order."
    )


class Sequence(BaseModel):
    """One pointing: a target, when and under which constraints, and its albums."""

    model_config = _MODEL

    name: Name = Field(description="Sequence name, unique within the request.")
    id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:/-]+$",
        description="Sequence id, given once by routines when it accepts the request; the same in the "
        "plan, the schedule, the observations and the images. Absent in a document being submitted.",
    )
    target: Target = Field(description="What to point at.")
    date: Literal["tonight"] | dt.date = Field(
        default="tonight",
        description=f"'tonight' or the local date (YYYY-MM-DD) of the evening the night starts, "
        f"at most {MAX_NIGHTS_AHEAD} nights ahead (checked at submission).",
    )
    carry_over_nights: int = Field(
        default=0,
        strict=True,
        ge=0,
        le=MAX_NIGHTS_AHEAD,
        description="Further nights to try if not observed on its date.",
    )
    mandatory: bool = Field(
        default=False, strict=True, description="For all_or_nothing: the request fails without it."
    )
    priority_offset: int = Field(
        default=0, strict=True, ge=-5, le=5, description="Added to the request's priority."
    )
    constraints: SequenceConstraints = Field(
        default_factory=SequenceConstraints, description="Observing limits."
    )
    albums: Annotated[list[Album], at_most(len(Detector))] = Field(
        min_length=1, max_length=len(Detector), description="One album per detector, taken in parallel."
    )

    @field_validator("albums")
    @classmethod
    def _one_album_per_detector(cls, albums: list[Album]) -> list[Album]:
        detectors = [a.detector for a in albums]
        if len(set(detectors)) != len(detectors):
            raise ValueError(f"one album per detector, got {[d.value for d in detectors]}")
        return albums


class RequestContent(BaseModel):
    """What a request asks for: shared by the stored request and its JSON document."""

    model_config = _MODEL

    name: Name = Field(description="Request name.")
    program: str = Field(
        strict=True,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Scientific program code, e.g. 'GRB'.",
    )
    strategy: Strategy = Field(default=Strategy.BEST_EFFORT, description="best_effort or all_or_nothing.")
    kind: RequestKind = Field(default=RequestKind.ROUTINE, description="routine or alert.")
    alert_id: Text | None = Field(
        default=None, min_length=1, max_length=256, description="Alert identifier (kind alert only)."
    )
    valid_from: AwareDatetime | None = Field(
        default=None, description="Alert requests: not before this time (ISO 8601, UTC)."
    )
    valid_until: AwareDatetime | None = Field(
        default=None, description="Alert requests: not after this time (ISO 8601, UTC)."
    )
    priority: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=100,
        description="Priority override (higher first); null: from the program's grade.",
    )
    quota_override: bool = Field(
        default=False,
        strict=True,
        description="Alert requests: accepted even when the program's quota is spent (the time is "
        "booked all the same), as the alert strategy says.",
    )
    decay_index: float | None = Field(
        default=None,
        ge=0.0,
        le=5.0,
        description="Alert requests: the value of observing falls as (1 + t / 600 s)^-index with the "
        "time t from valid_from (the alert's reception) to the start, as its alert strategy says "
        "(an afterglow fades about as t^-1: 1); null: no decay.",
    )
    sequences: Annotated[list[Sequence], at_most(MAX_SEQUENCES)] = Field(
        min_length=1, max_length=MAX_SEQUENCES, description="Sequences, in order."
    )

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _coherent(self) -> RequestContent:
        if self.kind is not RequestKind.ALERT:
            extra = [
                f
                for f in ("alert_id", "valid_from", "valid_until", "decay_index")
                if getattr(self, f) is not None
            ]
            if self.quota_override:
                extra.append("quota_override")
            if extra:
                raise ValueError(f"{', '.join(extra)} only allowed with kind 'alert'")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        names = [s.name for s in self.sequences]
        if len(set(names)) != len(names):
            raise ValueError("sequence names must be unique within a request")
        return self


class Request(RequestContent):
    """A request as stored: its content plus who owns it."""

    id: str | None = Field(default=None, description="Identifier given by routines when stored.")
    user: Text = Field(min_length=1, max_length=128, description="Owner's user name.")
