"""One pydantic model per Kafka topic (see docs/ARCHITECTURE.md and ``pyros contracts asyncapi``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pyros_common.contracts.envelope import Event
from pyros_common.domain.requests.document import RequestDocument


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- pyros.voevents.raw ---------------------------------------------------------------


class VoeventReceived(Event):
    """One VOEvent packet as received, verbatim."""

    topic: ClassVar[str] = "pyros.voevents.raw"
    key_field: ClassVar[str] = "ivorn"

    ivorn: str = Field(description="IVORN of the packet (empty if it could not be read).")
    intake: Literal["vtp", "gcn-kafka", "http", "replay"] = Field(description="How the packet arrived.")
    received_at: AwareDatetime = Field(description="When the intake received the packet (UTC).")
    xml: str = Field(description="The packet as text (UTF-8; undecodable bytes replaced, see xml_base64).")
    size_bytes: int = Field(ge=0, description="Size of the packet in bytes.")
    xml_base64: str | None = Field(
        None,
        description="The packet's exact bytes (base64), when they are not valid UTF-8 (another "
        "encoding, or damaged): what the alerts handler parses, so that it judges the same bytes "
        "as the intake that answered the sender.",
    )

    def raw_bytes(self) -> bytes:
        """The packet's bytes as received."""
        if self.xml_base64 is not None:
            import base64

            return base64.b64decode(self.xml_base64)
        return self.xml.encode("utf-8")


# --- pyros.alerts ---------------------------------------------------------------------


class AlertChanged(Event):
    """A normalised alert was created, refined by a new packet, or retracted."""

    topic: ClassVar[str] = "pyros.alerts"
    key_field: ClassVar[str] = "alert_id"

    alert_id: str = Field(description="PyROS id of the astrophysical event (one alert per event).")
    action: Literal["created", "updated", "retracted"] = Field(description="What happened to the alert.")
    event_key: str = Field(description="Mission trigger id of the first packet (e.g. sb26042105).")
    missions: list[str] = Field(description="Missions that reported this event.")
    mission: str = Field(description="Mission of the packet that caused this change.")
    instrument: str = Field("", description="Instrument of that packet (ECLAIRs, BAT, GBM...).")
    packet_type: str = Field("", description="Mission packet type of that packet.")
    role: Literal["observation", "test", "utility"] = Field(description="VOEvent role of that packet.")
    ivorn: str = Field(description="IVORN of the packet that caused this change.")
    trigger_time: AwareDatetime = Field(description="Trigger time of the event (UTC).")
    ra_deg: float | None = Field(None, ge=0, lt=360, description="Best right ascension, ICRS [deg].")
    dec_deg: float | None = Field(None, ge=-90, le=90, description="Best declination, ICRS [deg].")
    error_deg: float | None = Field(None, ge=0, description="Radius of the best error circle [deg].")
    is_grb: bool = Field(False, description="True when a mission identified the event as a GRB.")
    retracted: bool = Field(False, description="True when the event was retracted.")
    packet_ivorns: list[str] = Field(default_factory=list, description="IVORNs of every packet so far.")
    request_id: str | None = Field(None, description="Alert request created for this alert, if any.")


# --- pyros.requests -------------------------------------------------------------------


class RequestChanged(Event):
    """A request's lifecycle moved (routines or alerts)."""

    topic: ClassVar[str] = "pyros.requests"
    key_field: ClassVar[str] = "request_id"

    request_id: str = Field(description="PyROS request id.")
    action: Literal[
        "submitted", "accepted", "rejected", "changed", "cancelled", "completed", "partial", "failed"
    ] = Field(description="What happened.")
    state: str = Field(description="Request state after the change.")
    kind: Literal["routine", "alert"] = Field("routine", description="Routine or alert request.")
    program: str = Field("", description="Scientific program code.")
    owner: str = Field("", description="User who owns the request.")
    reason: str = Field("", description="Why (for rejected, cancelled, failed).")
    grade: Literal["A", "B", "C"] | None = Field(
        None, description="Grade of the request's program when routines accepted it (its priority)."
    )
    document: RequestDocument | None = Field(
        None,
        description="The request document (schema pyros.request/1, docs/request-document.md), the same "
        "model routines validates; once accepted, every sequence carries its id.",
    )


# --- pyros.schedule -------------------------------------------------------------------


class ScheduledSequence(_Part):
    request_id: str = Field(description="Request id.")
    sequence_id: str = Field(description="Sequence id.")
    telescope_id: str = Field(description="Telescope that runs it.")
    start: AwareDatetime = Field(description="Planned start (UTC).")
    end: AwareDatetime = Field(description="Planned end (UTC).")
    weight: float = Field(description="Scheduling weight (dimensionless).")


class UnscheduledSequence(_Part):
    request_id: str = Field(description="Request id.")
    sequence_id: str = Field(description="Sequence id.")
    reason: str = Field(description="Why it is not in the plan.")


class ScheduleChanged(Event):
    """A new schedule version for a night."""

    topic: ClassVar[str] = "pyros.schedule"
    key_field: ClassVar[str] = "telescope_id"

    night: date = Field(description="Night, named by the local date of its evening.")
    version: int = Field(ge=1, description="Schedule version for this night, increasing.")
    night_start: AwareDatetime = Field(description="Start of astronomical night (UTC).")
    night_end: AwareDatetime = Field(description="End of astronomical night (UTC).")
    trigger: str = Field(description="What caused this version (initial, new request, alert, ...).")
    scheduled: list[ScheduledSequence] = Field(default_factory=list, description="Planned sequences.")
    unscheduled: list[UnscheduledSequence] = Field(
        default_factory=list, description="Left out, with reasons."
    )
    interrupted: str | None = Field(None, description="Sequence id interrupted by this version, if any.")
    objective: float = Field(0.0, description="Sum of weight × duration of the plan [s].")
    solver: str = Field("", description="Solver and passes used.")


# --- pyros.system ---------------------------------------------------------------------


class Dispatch(_Part):
    """What majordome asks the observer to run now (it interrupts whatever runs)."""

    kind: Literal["sequence", "calibration"] = Field(
        description="A scheduled sequence, or calibration frames."
    )
    request_id: str = Field(description="Request id (for calibration: 'calibration-<night>').")
    sequence_id: str = Field(description="Sequence id, as routines gave it.")
    planned_start: AwareDatetime = Field(description="Start in the schedule (UTC).")
    planned_end: AwareDatetime = Field(description="End in the schedule (UTC).")
    schedule_version: int = Field(0, ge=0, description="Schedule version it comes from (0: calibration).")
    preempts: str | None = Field(None, description="Sequence id it interrupts (an alert preemption).")
    frames: dict[str, int] = Field(
        default_factory=dict, description="Calibration only: frames per type, e.g. {'bias': 5, 'dark': 5}."
    )


class SystemChanged(Event):
    """Observatory mode (majordome's night state machine) and why; the sequence it dispatches."""

    topic: ClassVar[str] = "pyros.system"
    key_field: ClassVar[str] = "telescope_id"

    state: Literal["day", "dusk", "running", "paused", "dawn", "closing", "night", "closed", "fault"] = Field(
        description="Observatory state: day, dusk, running, paused, dawn, closing (night/closed/fault: "
        "older producers)."
    )
    reason: str = Field("", description="Why the state changed.")
    night: date | None = Field(None, description="Night in progress, if any.")
    dispatch: Dispatch | None = Field(None, description="The sequence to run now (state running), if any.")
    replan: bool = Field(False, description="True when majordome asks the scheduler for a new plan.")


# --- pyros.device.commands / pyros.device.status ---------------------------------------


class DeviceCommand(Event):
    """A command for one device; only device-gateway executes it."""

    topic: ClassVar[str] = "pyros.device.commands"
    key_field: ClassVar[str] = "device_id"

    command_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Id echoed by the status reply.")
    device_id: str = Field(description="Device id (telescope, cam-vis, cam-nir, filterwheel, dome, plc).")
    command: Literal[
        "connect",
        "status",
        "abort",
        "slew",
        "park",
        "unpark",
        "offset",
        "expose",
        "cooler",
        "set_filter",
        "set_focus",
        "dome",
    ] = Field(description="What to do (the one grammar of every device; see device-gateway's domain).")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Command parameters: ra_deg/dec_deg [deg], exposure_s [s], filter, position, ...",
    )
    timeout_s: float = Field(120.0, gt=0, description="After this the command counts as failed [s].")


class DeviceStatus(Event):
    """State of one device, periodically and in reply to commands."""

    topic: ClassVar[str] = "pyros.device.status"
    key_field: ClassVar[str] = "device_id"

    device_id: str = Field(description="Device id.")
    kind: Literal["telescope", "camera", "filterwheel", "dome", "weather", "plc", "focuser"] = Field(
        description="Kind of device."
    )
    state: Literal["idle", "busy", "slewing", "exposing", "parked", "error", "offline"] = Field(
        description="Device state."
    )
    command_id: uuid.UUID | None = Field(None, description="Command this status answers, if any.")
    done: bool = Field(
        False, description="True on the last status a command gets: it has finished (ok) or failed."
    )
    ok: bool = Field(True, description="False when the device or the command failed.")
    error: str = Field("", description="Error text from the device or the gateway.")
    ra_deg: float | None = Field(None, description="Pointing RA, ICRS [deg].")
    dec_deg: float | None = Field(None, description="Pointing Dec, ICRS [deg].")
    temperature_c: float | None = Field(None, description="Sensor temperature [°C].")
    values: dict[str, float | str | bool] = Field(
        default_factory=dict, description="Other readings (weather: wind_ms, humidity_pct, rain, ...)."
    )


# --- pyros.conditions -----------------------------------------------------------------


class ConditionVote(_Part):
    source: str = Field(description="Weather source (station, cloud sensor, rain detector...).")
    safe: bool | None = Field(description="This source's verdict; None when it has no valid data.")
    reason: str = Field("", description="Why unsafe or unknown.")
    suspect: bool = Field(
        False, description="True when it disagreed with the other sources too long and no longer votes."
    )
    excluded: bool = Field(False, description="True when an operator took it out of the vote.")
    values: dict[str, float | bool] = Field(
        default_factory=dict,
        description="Its last readings: clouds (sky - ambient) [°C], rain, wind [m/s], humidity [%], "
        "dew_point (ambient - dew point) [°C], sky_quality [mag/arcsec²].",
    )
    age_s: float | None = Field(None, ge=0, description="Age of its last reading [s]; None if never.")


class HealthSummary(_Part):
    """Device health as monitoring sees it (stale devices are UNKNOWN)."""

    ok: bool = Field(description="True when every blocking device is UP.")
    up: int = Field(0, ge=0, description="Devices UP.")
    down: int = Field(0, ge=0, description="Devices DOWN (offline or in error).")
    unknown: int = Field(0, ge=0, description="Devices with no recent status.")
    blocking_not_up: list[str] = Field(default_factory=list, description="Blocking devices not UP.")
    reason: str = Field("", description="Why not ok.")


class ConditionsChanged(Event):
    """Synthesised observing conditions from every weather source."""

    topic: ClassVar[str] = "pyros.conditions"
    key_field: ClassVar[str] = "site_id"

    site_id: str = Field(description="Site id.")
    safe: bool = Field(description="True when it is safe to open and observe.")
    sky: Literal["clear", "cloudy", "overcast", "unknown"] = Field("unknown", description="Sky state.")
    votes: list[ConditionVote] = Field(default_factory=list, description="Per-source votes.")
    reason: str = Field("", description="Summary of why unsafe.")
    quantities: dict[str, float | bool | None] = Field(
        default_factory=dict,
        description="The vote per quantity (units as in ConditionVote.values); None when no source votes.",
    )
    reopen_at: AwareDatetime | None = Field(
        None, description="Safe again now, but waiting for the continuous safe period until then (UTC)."
    )
    health: HealthSummary | None = Field(None, description="Device health summary, when known.")


# --- pyros.observations ---------------------------------------------------------------


class ObservationChanged(Event):
    """Execution of a sequence and its plans."""

    topic: ClassVar[str] = "pyros.observations"
    key_field: ClassVar[str] = "sequence_id"

    sequence_id: str = Field(description="Sequence id.")
    request_id: str = Field(description="Request id.")
    action: Literal["started", "image_taken", "completed", "interrupted", "failed"] = Field(
        description="What happened."
    )
    plan_index: int | None = Field(None, ge=0, description="Plan concerned, if any.")
    album: str | None = Field(None, description="Album (detector) concerned, if any.")
    reason: str = Field("", description="Why interrupted or failed.")
    images_done: int = Field(0, ge=0, description="Images taken so far in this sequence.")
    images_planned: int = Field(0, ge=0, description="Images the sequence plans in all.")
    kind: Literal["sequence", "calibration"] = Field("sequence", description="What ran.")


# --- pyros.images ---------------------------------------------------------------------


class ImageWritten(Event):
    """An image file is fully written (renamed from its temporary name)."""

    topic: ClassVar[str] = "pyros.images"
    key_field: ClassVar[str] = "request_id"

    request_id: str = Field(description="Request id.")
    sequence_id: str = Field(description="Sequence id.")
    album: str = Field(description="Album (detector) name.")
    plan_index: int = Field(ge=0, description="Plan index within the album.")
    detector: Literal["VIS", "NIR"] = Field(description="Detector.")
    filter: str = Field(description="Filter name.")
    exposure_s: float = Field(ge=0, description="Exposure time [s].")
    path: str = Field(description="Path of the FITS file, relative to the data directory.")
    frame: int = Field(0, ge=0, description="Frame number within the plan.")
    image_type: Literal["light", "bias", "dark", "flat"] = Field("light", description="Kind of frame.")
    taken_at: AwareDatetime | None = Field(None, description="Start of the exposure (UTC).")


# --- pyros.analysis -------------------------------------------------------------------


class AnalysisDone(Event):
    """Calibration and analysis results for one image."""

    topic: ClassVar[str] = "pyros.analysis"
    key_field: ClassVar[str] = "request_id"

    request_id: str = Field(description="Request id.")
    image_path: str = Field(description="Analysed image (relative to the data directory).")
    calibrations: list[str] = Field(default_factory=list, description="Applied: bias, dark, flat.")
    n_sources: int = Field(0, ge=0, description="Sources detected.")
    candidate: bool = Field(False, description="True when a transient candidate was found.")
    ra_deg: float | None = Field(None, description="Candidate RA, ICRS [deg].")
    dec_deg: float | None = Field(None, description="Candidate Dec, ICRS [deg].")
    magnitude: float | None = Field(None, description="Candidate magnitude [mag].")
    calibrated_path: str | None = Field(None, description="Calibrated image, if written.")
    # additive (analyzer, issue 14)
    filter: str = Field("", description="Filter of the image.")
    solve_method: str | None = Field(
        None, description="How the WCS was solved (method:catalogue); None: not."
    )
    n_matched: int = Field(0, ge=0, description="Source-catalogue pairs of the WCS fit.")
    wcs_error_arcsec: float | None = Field(None, ge=0, description="1-sigma error of the WCS [arcsec].")
    zero_point: float | None = Field(
        None, description="Photometric zero point: mag = zp - 2.5 log10(ADU/s) [mag]."
    )
    problems: list[str] = Field(
        default_factory=list, description="What was missing (e.g. a master); analysed anyway."
    )
    failure: str | None = Field(
        None, description="Why the image gave no astrometry (corrupt FITS, failed solve)."
    )
    error_arcsec: float | None = Field(None, ge=0, description="Candidate position error, 1 sigma [arcsec].")
    confidence: float | None = Field(None, ge=0, le=1, description="Candidate confidence score in [0, 1].")
    since_trigger_s: float | None = Field(
        None, description="Candidate's latest detection, time from the trigger [s]."
    )
    alert_ivorn: str | None = Field(None, description="IVORN of the alert packet the candidate answers.")
    voevent_ivorn: str | None = Field(None, description="IVORN of our VOEvent for the candidate, once sent.")
    voevent_path: str | None = Field(
        None, description="That VOEvent's file (relative to the data directory)."
    )


# --- pyros.heartbeat ------------------------------------------------------------------


class Heartbeat(Event):
    """A service's lifecycle state, sent periodically."""

    topic: ClassVar[str] = "pyros.heartbeat"
    key_field: ClassVar[str] = "service"

    service: str = Field(description="Service name.")
    state: Literal["STANDBY", "ENABLED", "FAULT"] = Field(description="Lifecycle state.")
    reason: str = Field("", description="Why FAULT or STANDBY.")
    uptime_s: float = Field(0.0, ge=0, description="Seconds since the service started [s].")


# --- pyros.dlq ------------------------------------------------------------------------


class DeadLetter(Event):
    """A message that could not be handled, with its original bytes and the reason."""

    topic: ClassVar[str] = "pyros.dlq"
    key_field: ClassVar[str] = "original_topic"

    original_topic: str = Field(description="Topic the message came from.")
    original_key: str | None = Field(None, description="Its key, as text.")
    original_partition: int | None = Field(None, description="Its partition.")
    original_offset: int | None = Field(None, description="Its offset.")
    original_bytes_b64: str = Field(description="The original value, base64-encoded.")
    reason: str = Field(description="Why it was rejected.")
    consumer_group: str = Field("", description="Group (service) that rejected it.")
    attempts: int = Field(1, ge=1, description="How many times the handler was tried.")
