"""Safe VOEvent 2.0 parsing.

Packets come from the network, so we parse them ourselves with a locked-down lxml parser
(no DTD, no entity resolution, no network, no huge trees) and refuse anything with a
DOCTYPE. ``voeventparse.loads`` is not used on received bytes: it parses with lxml's
default parser, which loads DTDs and expands internal entities.

Every failure becomes ``RejectedPacket(reason)``; nothing else escapes ``parse_packet``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import cast

from lxml import etree

from pyros_alerts.domain.missions import PacketContext, Position, adapt
from pyros_alerts.domain.model import ROLES, Citation, NormalizedPacket, RejectedPacket, Role

MAX_PACKET_BYTES = 1_000_000
VOEVENT_NS = "http://www.ivoa.net/xml/VOEvent/v2.0"
VOEVENT_TAG = f"{{{VOEVENT_NS}}}VOEvent"

_FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY")
_ISOTIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00:?00)?$",
)
_INT = re.compile(r"^[+-]?\d{1,9}$")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(el: etree._Element) -> str | None:
    tag = el.tag
    if not isinstance(tag, str):  # comments, processing instructions, entities
        return None
    return tag.rsplit("}", 1)[-1]


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c) == name:
            return c
    return None


def _path(el: etree._Element | None, *names: str) -> etree._Element | None:
    for n in names:
        el = _child(el, n)
    return el


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    text = el.text
    return None if text is None else str(text).strip()


def parse_isotime(value: str) -> datetime | None:
    """Parse a VOEvent ISOTime (UTC), rounded to the millisecond; ``None`` if malformed."""
    m = _ISOTIME.match(value.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, _tz = m.groups()
    try:
        base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:
        return None
    if frac:
        micro = round(int(frac.ljust(9, "0")) / 1000)  # ns → µs
        base += timedelta(microseconds=micro)
    ms = round(base.microsecond / 1000)
    return base.replace(microsecond=0) + timedelta(milliseconds=ms)


def _float(value: str | None, what: str) -> float:
    if value is None or value == "":
        raise RejectedPacket(f"missing {what}")
    try:
        x = float(value)
    except ValueError:
        raise RejectedPacket(f"{what} is not a number: {value[:40]!r}") from None
    if not math.isfinite(x):
        raise RejectedPacket(f"{what} is not finite: {value[:40]!r}")
    return x


def _load_root(data: bytes) -> etree._Element:
    if any(marker in data for marker in _FORBIDDEN_MARKUP):
        raise RejectedPacket("DTD or entity declarations are forbidden")
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.LxmlError, ValueError, LookupError, UnicodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RejectedPacket(f"bad XML: {first_line[:200]}") from None
    if root is None:
        raise RejectedPacket("bad XML: empty document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise RejectedPacket("DTD or entity declarations are forbidden")
    return root


def _position(root: etree._Element) -> tuple[Position | None, etree._Element | None, str]:
    """Return (position or None, the AstroCoords element, the coordinate system id)."""
    obs = _path(root, "WhereWhen", "ObsDataLocation", "ObservationLocation")
    system_el = _child(obs, "AstroCoordSystem")
    system = (system_el.get("id") if system_el is not None else None) or ""
    coords = _child(obs, "AstroCoords")
    pos_el = _child(coords, "Position2D")
    if pos_el is None:
        return None, coords, system
    unit = (pos_el.get("unit") or "deg").strip()
    if unit != "deg":
        raise RejectedPacket(f"unsupported Position2D unit {unit[:20]!r}")
    if "ICRS" not in system.upper() and "FK5" not in system.upper():
        raise RejectedPacket(f"unsupported coordinate system {system[:40]!r}")
    value2 = _child(pos_el, "Value2")
    ra = _float(_text(_child(value2, "C1")), "RA (C1)")
    dec = _float(_text(_child(value2, "C2")), "Dec (C2)")
    err_text = _text(_child(pos_el, "Error2Radius"))
    if not 0.0 <= ra < 360.0:
        raise RejectedPacket(f"RA out of range: {ra}")
    if not -90.0 <= dec <= 90.0:
        raise RejectedPacket(f"Dec out of range: {dec}")
    if err_text is None:
        return None, coords, system  # a position without an error circle is unusable
    return Position(ra, dec, _float(err_text, "Error2Radius")), coords, system


def parse_packet(raw: bytes | str) -> NormalizedPacket:
    """Parse and normalise one VOEvent 2.0 packet, or raise ``RejectedPacket``."""
    try:
        return _parse(raw)
    except RecursionError:
        raise RejectedPacket("bad XML: nesting too deep") from None


def _parse(raw: bytes | str) -> NormalizedPacket:
    if isinstance(raw, str):
        if len(raw) > MAX_PACKET_BYTES:
            raise RejectedPacket(f"packet larger than {MAX_PACKET_BYTES} bytes")
        data = raw.encode("utf-8", errors="surrogatepass")
    else:
        data = bytes(raw)
    if len(data) > MAX_PACKET_BYTES:
        raise RejectedPacket(f"packet larger than {MAX_PACKET_BYTES} bytes")
    if not data.strip():
        raise RejectedPacket("empty packet")

    root = _load_root(data)
    if root.tag != VOEVENT_TAG:
        raise RejectedPacket(f"root element is not a VOEvent 2.0 VOEvent: {str(root.tag)[:80]!r}")
    version = root.get("version")
    if version != "2.0":
        raise RejectedPacket(f"unsupported VOEvent version {str(version)[:20]!r}")
    ivorn = (root.get("ivorn") or "").strip()
    if not ivorn:
        raise RejectedPacket("missing ivorn")
    if not ivorn.startswith("ivo://") or len(ivorn) > 1024:
        raise RejectedPacket(f"ivorn is not an ivo:// URI: {ivorn[:80]!r}")
    role_text = (root.get("role") or "").strip()
    if role_text not in ROLES:
        raise RejectedPacket(f"unknown role {role_text[:20]!r}")
    role = cast(Role, role_text)

    params: dict[str, str] = {}
    what = _child(root, "What")
    if what is not None:
        for el in what.iter():
            if _local(el) == "Param":
                name = el.get("name")
                if name and name not in params:
                    params[name] = (el.get("value") or "").strip()

    citations: list[Citation] = []
    cites_el = _child(root, "Citations")
    if cites_el is not None:
        for el in cites_el:
            if _local(el) == "EventIVORN":
                target = _text(el)
                if target:
                    citations.append(Citation(ivorn=target, cite=(el.get("cite") or "").strip().lower()))

    position, coords, system = _position(root)
    if system and not system.upper().startswith("UTC"):
        raise RejectedPacket(f"unsupported time scale in {system[:40]!r}")
    iso = _text(_path(coords, "Time", "TimeInstant", "ISOTime"))
    if not iso:
        raise RejectedPacket("missing WhereWhen ISOTime")
    trigger_time = parse_isotime(iso)
    if trigger_time is None:
        raise RejectedPacket(f"malformed ISOTime {iso[:40]!r}")

    pt_text = params.get("Packet_Type", "")
    packet_type: int | str = int(pt_text) if _INT.match(pt_text) else (pt_text[:40] or "unknown")

    fields = adapt(
        PacketContext(
            ivorn=ivorn,
            packet_type=packet_type,
            params=params,
            citations=tuple(citations),
            position=position,
            parse_time=parse_isotime,
        )
    )
    pos = fields.position
    return NormalizedPacket(
        ivorn=ivorn,
        role=role,
        mission=fields.mission,
        instrument=fields.instrument,
        packet_type=packet_type,
        event_key=fields.event_key,
        trigger_time=trigger_time,
        event_time=fields.event_time or trigger_time,
        ra_deg=None if pos is None else pos.ra_deg,
        dec_deg=None if pos is None else pos.dec_deg,
        error_deg=None if pos is None else pos.error_deg,
        is_grb=fields.is_grb,
        is_retraction=fields.is_retraction,
        citations=tuple(citations),
        raw_size=len(data),
    )
