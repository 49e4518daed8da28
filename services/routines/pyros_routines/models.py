"""API models: XBase (shared fields), XCreate (input), XUpdate (partial input), XPublic (output)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pyros_common.domain.requests.model import Text

Role = Literal["admin", "expert", "user"]
Grade = Literal["A", "B", "C"]
Username = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ProgramCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[Text, Field(min_length=8, max_length=128, description="At least 8 characters.")]
Email = Annotated[Text, Field(max_length=255, description="Contact address (free text).")]

# Input models are strict: "5" is not a number, false is not 0, 1 is not true (422 naming the field).
_IN = ConfigDict(extra="forbid", strict=True)


class Message(BaseModel):
    message: str


class Token(BaseModel):
    access_token: str = Field(description="JWT to send as 'Authorization: Bearer <token>'.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Lifetime of the token [s].")


# --- users -----------------------------------------------------------------------------


class UserBase(BaseModel):
    username: Username = Field(description="Login name.")
    email: Email = ""


class UserRegister(UserBase):
    """Self-registration: the account stays inactive until an admin validates it."""

    model_config = _IN
    password: Password


class UserCreate(UserBase):
    """An account made by an admin."""

    model_config = _IN
    password: Password
    role: Role = "user"
    active: bool = Field(True, description="False: the user cannot log in yet.")
    programs: list[ProgramCode] = Field(default_factory=list, max_length=100, description="Program codes.")


class UserUpdate(BaseModel):
    """Admin changes to an account; absent fields are left as they are."""

    model_config = _IN
    email: Email | None = None
    role: Role | None = None
    active: bool | None = Field(None, description="True validates the account.")
    programs: list[ProgramCode] | None = Field(None, max_length=100, description="Replaces the programs.")
    password: Password | None = None


class UserUpdateMe(BaseModel):
    model_config = _IN
    email: Email | None = None


class PasswordChange(BaseModel):
    model_config = _IN
    current_password: Annotated[Text, Field(max_length=128)]
    new_password: Password


class PasswordReset(BaseModel):
    model_config = _IN
    token: Annotated[Text, Field(min_length=1, max_length=256, description="The single-use reset token.")]
    new_password: Password


class ResetTokenPublic(BaseModel):
    token: str = Field(description="Single-use token; give it to the user. It is not stored in clear.")
    expires_at: dt.datetime = Field(description="Expiry (UTC).")


class UserPublic(UserBase):
    id: int
    role: Role
    active: bool
    programs: list[str]
    created_at: dt.datetime


class UsersPublic(BaseModel):
    items: list[UserPublic]
    total: int


# --- programs --------------------------------------------------------------------------


class ProgramBase(BaseModel):
    name: Annotated[Text, Field(max_length=255)] = ""
    grade: Grade = Field(description="TAC grade: A high, B medium, C low priority.")
    quota_percent: float = Field(ge=0, le=100, description="Share of each semester's night time [%].")


class ProgramCreate(ProgramBase):
    model_config = _IN
    code: ProgramCode = Field(description="Program code, e.g. GRB.")


class ProgramUpdate(BaseModel):
    model_config = _IN
    name: Annotated[Text, Field(max_length=255)] | None = None
    grade: Grade | None = None
    quota_percent: float | None = Field(None, ge=0, le=100)


class ProgramPublic(ProgramBase):
    code: str
    priority: Literal["high", "medium", "low"] = Field(description="Priority class from the grade.")
    created_at: dt.datetime


class ProgramsPublic(BaseModel):
    items: list[ProgramPublic]
    total: int


class QuotaPublic(BaseModel):
    """A program's time account for one semester."""

    program: str
    semester: str = Field(description="e.g. 2026A (Jan-Jun) or 2026B (Jul-Dec).")
    quota_percent: float = Field(description="[%] of the semester's night time.")
    semester_night_s: float = Field(description="Astronomical night time of the semester [s].")
    allocated_s: float = Field(description="[s]")
    booked_s: float = Field(description="Accepted, not yet observed [s].")
    used_s: float = Field(description="Observed [s].")
    left_s: float = Field(description="allocated - booked - used [s] (negative when overdrawn).")
    allocated_h: float = Field(description="[h]")
    booked_h: float = Field(description="[h]")
    used_h: float = Field(description="[h]")
    left_h: float = Field(description="[h]")


# --- requests --------------------------------------------------------------------------


class WindowPublic(BaseModel):
    start: dt.datetime = Field(description="UTC.")
    end: dt.datetime = Field(description="UTC.")
    duration_s: float = Field(description="[s]")


class SequencePublic(BaseModel):
    id: str
    name: str
    state: str
    target_name: str
    ra_deg: float = Field(description="ICRS [deg].")
    dec_deg: float = Field(description="ICRS [deg].")
    night: dt.date | None = Field(description="Night (local date of its evening) it is planned for.")
    duration_s: float = Field(description="Plans plus overheads [s].")
    priority_offset: int
    mandatory: bool
    carry_over_nights: int
    windows: list[WindowPublic] = Field(description="Every visibility window of that night.")
    chosen_window: int | None = Field(description="Index in windows of the one used (the longest).")


class RequestPublic(BaseModel):
    id: str
    name: str
    program: str
    owner: str
    kind: str
    strategy: str
    state: str
    reason: str
    alert_id: str | None
    duration_s: float = Field(description="Sum of the sequences' durations [s].")
    created_at: dt.datetime
    updated_at: dt.datetime
    sequences: list[SequencePublic]


class RequestsPublic(BaseModel):
    items: list[RequestPublic]
    total: int
    limit: int
    offset: int


class SequencePreview(BaseModel):
    name: str
    night: dt.date
    duration_s: float = Field(description="[s]")
    windows: list[WindowPublic]
    chosen_window: int


class ValidationReport(BaseModel):
    """What a submission would store; nothing is stored."""

    valid: bool = True
    duration_s: float = Field(description="[s]")
    sequences: list[SequencePreview]
    quotas: list[QuotaPublic] = Field(description="The program's accounts before this request.")


class CancelBody(BaseModel):
    model_config = _IN
    reason: Annotated[Text, Field(max_length=1000)] = ""


# --- ephemerides -----------------------------------------------------------------------


class PlanetPublic(BaseModel):
    name: str
    ra_deg: float = Field(description="Geocentric, ICRS axes, at midnight [deg].")
    dec_deg: float = Field(description="[deg]")
    max_altitude_deg: float = Field(description="Highest altitude between sunset and sunrise [deg].")


class EphemeridesPublic(BaseModel):
    """The night starting on the local evening of ``night``; times UTC, None when it does not happen."""

    site: str
    night: dt.date
    sunset: dt.datetime | None
    sunrise: dt.datetime | None
    civil_dusk: dt.datetime | None
    civil_dawn: dt.datetime | None
    nautical_dusk: dt.datetime | None
    nautical_dawn: dt.datetime | None
    astronomical_dusk: dt.datetime | None
    astronomical_dawn: dt.datetime | None
    midnight: dt.datetime
    moonrise: dt.datetime | None
    moonset: dt.datetime | None
    moon_illumination: float = Field(description="Illuminated fraction at midnight, 0..1.")
    moon_ra_deg: float
    moon_dec_deg: float
    planets: list[PlanetPublic]
