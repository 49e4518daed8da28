"""Mission adapters: read the mission-specific Params of a VOEvent.

Each adapter turns (IVORN, Params, citations, position) into the mission's event key,
instrument, GRB flag, retraction flag and position sentinels. Adapters never raise on
odd values: a missing Param gives a fallback (the IVORN fragment as event key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pyros_alerts.domain.model import Citation

Params = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Position:
    ra_deg: float
    dec_deg: float
    error_deg: float


@dataclass(frozen=True, slots=True)
class MissionFields:
    mission: str
    instrument: str
    event_key: str
    is_grb: bool
    is_retraction: bool
    position: Position | None
    event_time: datetime | None  # mission T0 when the packet gives one


@dataclass(frozen=True, slots=True)
class PacketContext:
    ivorn: str
    packet_type: int | str
    params: Params
    citations: tuple[Citation, ...]
    position: Position | None
    parse_time: Callable[[str], datetime | None]


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def _false(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("false", "0", "no")


def _fragment(ivorn: str) -> str:
    return ivorn.split("#", 1)[1] if "#" in ivorn else ivorn


def _cites_retraction(ctx: PacketContext) -> bool:
    return any(c.cite == "retraction" for c in ctx.citations)


def _generic_position(pos: Position | None) -> Position | None:
    """Drop sender sentinels: negative error, 0/0/0, or an all-sky error circle."""
    if pos is None:
        return None
    if pos.error_deg < 0 or pos.error_deg >= 180:
        return None
    if pos.ra_deg == 0 and pos.dec_deg == 0 and pos.error_deg == 0:
        return None
    return pos


def _trig_id(ctx: PacketContext) -> str | None:
    value = ctx.params.get("TrigID", "").strip()
    return value or None


# --- SVOM ---------------------------------------------------------------------------------

SVOM_RETRACTION = 219
SVOM_CATALOG = 203  # ECLAIRs detection of a known catalogued source
_SVOM_BURST = re.compile(r"#(sb\d{8})")


def _svom(ctx: PacketContext) -> MissionFields:
    burst = ctx.params.get("Burst_Id", "").strip()
    if not burst:
        m = _SVOM_BURST.search(ctx.ivorn)
        burst = m.group(1) if m else _fragment(ctx.ivorn)
    retraction = ctx.packet_type == SVOM_RETRACTION or _cites_retraction(ctx)
    t0 = ctx.params.get("Alert_Seq_T0")
    return MissionFields(
        mission="SVOM",
        instrument=ctx.params.get("Instrument", "").strip() or "unknown",
        event_key=burst,
        is_grb=not retraction and ctx.packet_type != SVOM_CATALOG,
        is_retraction=retraction,
        position=_generic_position(ctx.position),
        event_time=ctx.parse_time(t0) if t0 else None,
    )


# --- NASA GCN: Swift, Fermi, INTEGRAL, MAXI, AMON, SNEWS ----------------------------------

_SWIFT_INSTRUMENTS = {
    60: "BAT", 61: "BAT", 62: "BAT", 82: "BAT", 97: "BAT", 98: "BAT",
    65: "UVOT", 81: "UVOT", 67: "XRT", 84: "BAT", 83: "Swift",
}  # fmt: skip
_SWIFT_GRB_TYPES = {61, 67, 81, 97, 82}
_SWIFT_TRIG = re.compile(r"_(\d+)-\d+$")


def _swift(ctx: PacketContext) -> MissionFields:
    pt = ctx.packet_type if isinstance(ctx.packet_type, int) else -1
    not_grb = _true(ctx.params.get("Def_NOT_a_GRB")) or _false(ctx.params.get("GRB_Identified"))
    m = _SWIFT_TRIG.search(ctx.ivorn)
    key = _trig_id(ctx) or (m.group(1) if m else _fragment(ctx.ivorn))
    return MissionFields(
        mission="Swift",
        instrument=_SWIFT_INSTRUMENTS.get(pt, "Swift"),
        event_key=key,
        is_grb=pt in _SWIFT_GRB_TYPES and not not_grb,
        is_retraction=_cites_retraction(ctx),
        position=_generic_position(ctx.position),
        event_time=None,
    )


_GBM_GRB_CLASS = "4"  # Most_Likely_Index 4 is "GRB" in the GBM classification table
_FERMI_TRIG = re.compile(r"_(\d{9})_")


def _fermi(ctx: PacketContext) -> MissionFields:
    pt = ctx.packet_type if isinstance(ctx.packet_type, int) else -1
    instrument = "LAT" if 120 <= pt <= 129 else "GBM"
    m = _FERMI_TRIG.search(ctx.ivorn)
    key = _trig_id(ctx) or (m.group(1) if m else _fragment(ctx.ivorn))
    klass = ctx.params.get("Most_Likely_Index")
    is_grb = (
        not _true(ctx.params.get("Def_NOT_a_GRB"))
        and pt != 131  # sub-threshold candidates are not identified GRBs
        and (klass is None or klass.strip() == _GBM_GRB_CLASS)
    )
    return MissionFields(
        mission="Fermi",
        instrument=instrument,
        event_key=key,
        is_grb=is_grb,
        is_retraction=_cites_retraction(ctx),
        position=_generic_position(ctx.position),
        event_time=None,
    )


# Wakeup and Refined packets of one INTEGRAL burst carry different TrigID values
# (10042 and 75578 for burst 010042); the IVORN keeps the burst number.
_INTEGRAL_TRIG = re.compile(r"#[A-Za-z_]+_Pos_(\d+)-")


def _integral(ctx: PacketContext) -> MissionFields:
    m = _INTEGRAL_TRIG.search(ctx.ivorn)
    key = m.group(1) if m else (_trig_id(ctx) or _fragment(ctx.ivorn))
    return MissionFields(
        mission="INTEGRAL",
        instrument="IBAS",
        event_key=key,
        is_grb=not _true(ctx.params.get("Def_NOT_a_GRB")),
        is_retraction=_cites_retraction(ctx),
        position=_generic_position(ctx.position),
        event_time=None,
    )


def _maxi(ctx: PacketContext) -> MissionFields:
    return MissionFields(
        mission="MAXI",
        instrument="GSC",
        event_key=_trig_id(ctx) or _fragment(ctx.ivorn),
        is_grb=False,
        is_retraction=_cites_retraction(ctx),
        position=_generic_position(ctx.position),
        event_time=None,
    )


def _icecube(ctx: PacketContext) -> MissionFields:
    run = ctx.params.get("run_id", "").strip()
    event = ctx.params.get("event_id", "").strip()
    key = f"{run}_{event}" if run and event else _fragment(ctx.ivorn)
    return MissionFields(
        mission="IceCube",
        instrument="IceCube",
        event_key=key,
        is_grb=False,
        is_retraction=_true(ctx.params.get("Retraction")) or _cites_retraction(ctx),
        position=_generic_position(ctx.position),
        event_time=None,
    )


def _snews(ctx: PacketContext) -> MissionFields:
    return MissionFields(
        mission="SNEWS",
        instrument="SNEWS",
        event_key=_trig_id(ctx) or _fragment(ctx.ivorn),
        is_grb=False,
        is_retraction=_cites_retraction(ctx),
        position=_generic_position(ctx.position),  # 0/0/360: all sky, no position
        event_time=None,
    )


# --- LVK ----------------------------------------------------------------------------------

LVK_RETRACTION = 164
_LVK_ID = re.compile(r"#([A-Z]*[SG]\d{6}[a-z]*|[A-Z]?\d+)-")


def _lvk(ctx: PacketContext) -> MissionFields:
    grace = ctx.params.get("GraceID", "").strip()
    if not grace:
        m = _LVK_ID.search(ctx.ivorn)
        grace = m.group(1) if m else _fragment(ctx.ivorn)
    retraction = (
        ctx.packet_type == LVK_RETRACTION
        or ctx.params.get("AlertType", "").strip().lower() == "retraction"
        or _cites_retraction(ctx)
    )
    return MissionFields(
        mission="LVK",
        instrument=ctx.params.get("Instruments", "").strip() or "LVK",
        event_key=grace,
        is_grb=False,
        is_retraction=retraction,
        position=_generic_position(ctx.position),  # LVK sends sky maps, not circles
        event_time=None,
    )


def _other(ctx: PacketContext) -> MissionFields:
    authority = ctx.ivorn.removeprefix("ivo://").split("#", 1)[0]
    return MissionFields(
        mission=authority or "unknown",
        instrument="unknown",
        event_key=_trig_id(ctx) or _fragment(ctx.ivorn),
        is_grb=False,
        is_retraction=_cites_retraction(ctx),
        position=_generic_position(ctx.position),
        event_time=None,
    )


Adapter = Callable[[PacketContext], MissionFields]

# IVORN stream prefix → adapter. Order matters only for overlapping prefixes.
ADAPTERS: tuple[tuple[str, Adapter], ...] = (
    ("ivo://org.svom/", _svom),
    ("ivo://nasa.gsfc.gcn/swift#", _swift),
    ("ivo://nasa.gsfc.gcn/fermi#", _fermi),
    ("ivo://nasa.gsfc.gcn/integral#", _integral),
    ("ivo://nasa.gsfc.gcn/maxi#", _maxi),
    ("ivo://nasa.gsfc.gcn/amon#icecube", _icecube),
    ("ivo://nasa.gsfc.gcn/snews#", _snews),
    ("ivo://gwnet/", _lvk),
)

MISSIONS: tuple[str, ...] = ("SVOM", "Swift", "Fermi", "INTEGRAL", "MAXI", "IceCube", "SNEWS", "LVK")


def adapt(ctx: PacketContext) -> MissionFields:
    """Apply the adapter of the packet's stream (picked from its IVORN)."""
    lowered = ctx.ivorn.lower()
    for prefix, adapter in ADAPTERS:
        if lowered.startswith(prefix):
            return adapter(ctx)
    return _other(ctx)
