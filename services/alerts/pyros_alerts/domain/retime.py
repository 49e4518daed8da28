"""Re-time VOEvent packets so that their burst happens at a chosen instant, with fresh ids.

For simulations (``pyros night --alert packet.xml@06:10``, ``pyros alerts send --now``) and
the end-to-end tests: real, old packets are rewritten so that

- every ISO 8601 time in them (``<Who><Date>``, the ``WhereWhen`` ``ISOTime``, time Params such
  as SVOM's ``Alert_Seq_T0``, times in the IVORN) moves by one shift, so the ``ISOTime`` (the
  trigger time the parser reads) lands on the requested instant and every other time keeps its
  distance to it; GCN ``Burst_TJD`` / ``Burst_SOD`` move by the same shift;
- the mission trigger ids (the matcher's event key: SVOM ``Burst_Id``, GCN ``TrigID``, the
  trigger number in the IVORN) are replaced everywhere in the packet by ids derived from a
  ``tag``: one tag gives the same new ids, so the packets of one event re-timed with one tag
  still match each other, and a fresh tag never collides with an earlier run.

The position is never touched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyros_alerts.domain.parsing import parse_packet

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_ISOTIME_EL = re.compile(rb"(<(?:\w+:)?ISOTime>)([^<]*)(</(?:\w+:)?ISOTime>)")
_IVORN_ATTR = re.compile(rb"""<(?:\w+:)?VOEvent\b[^>]*?\bivorn\s*=\s*(["'])(.*?)\1""", re.S)
_PARAM = re.compile(
    r"""(<(?:\w+:)?Param\b[^>]*?\bname\s*=\s*["'](?P<name>[^"']+)["'][^>]*?\bvalue\s*=\s*["'])"""
    r"""(?P<value>[^"']*)(["'])""",
    re.S,
)
_TJD_EPOCH = datetime(1968, 5, 24, tzinfo=UTC)  # TJD 0 = MJD 40000


@dataclass(frozen=True)
class Retimed:
    """One re-timed packet and what the alerts service will read from it."""

    path: str  # where the packet came from (a file name, or "" for bytes)
    xml: bytes
    ivorn: str
    mission: str
    event_key: str
    trigger_time: datetime
    ra_deg: float | None
    dec_deg: float | None
    error_deg: float | None


def parse_iso(value: str) -> datetime:
    """An ISO 8601 time as written in packets (no zone means UTC)."""
    m = _ISO.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"not an ISO time: {value!r}")
    base = datetime.fromisoformat(f"{m['date']}T{m['time']}").replace(tzinfo=UTC)
    frac = m["frac"] or ""
    if frac:
        base += timedelta(microseconds=round(int(frac.ljust(9, "0")) / 1000))
    tz = m["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        base -= sign * timedelta(hours=hh, minutes=mm)
    return base


def _format_like(t: datetime, m: re.Match[str]) -> str:
    """``t`` written as the matched original: same fraction digits (more if needed), same zone."""
    frac = m["frac"] or ""
    tz = m["tz"] or ""
    digits = len(frac)
    micro = t.microsecond
    if digits < 6 and micro % (10 ** (6 - digits)) != 0:
        digits = 3 if micro % 1000 == 0 and digits < 3 else 6
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{micro:06d}"[:digits] if digits <= 6 else "." + f"{micro:06d}".ljust(digits, "0")
    if tz and tz != "Z":
        tz = "+00:00" if ":" in tz else "+0000"  # written back in UTC
    return text + tz


def _shift_iso_text(text: str, shift: timedelta) -> str:
    def one(m: re.Match[str]) -> str:
        try:
            t = parse_iso(m.group(0))
        except ValueError:
            return m.group(0)
        return _format_like(t + shift, m)

    return _ISO.sub(one, text)


def _shift_tjd_sod(text: str, shift: timedelta) -> str:
    params = {m["name"]: m["value"] for m in _PARAM.finditer(text)}
    tjd, sod = params.get("Burst_TJD"), params.get("Burst_SOD")
    if not tjd or not sod:
        return text
    try:
        old = _TJD_EPOCH + timedelta(days=int(float(tjd)), seconds=float(sod))
    except ValueError:
        return text
    new = old + shift
    days = (new - _TJD_EPOCH).days
    secs = (new - (_TJD_EPOCH + timedelta(days=days))).total_seconds()
    decimals = len(sod.split(".", 1)[1]) if "." in sod else 0
    new_values = {"Burst_TJD": str(days), "Burst_SOD": f"{secs:.{decimals}f}"}

    def one(m: re.Match[str]) -> str:
        if m["name"] in new_values:
            return m.group(1) + new_values[m["name"]] + m.group(4)
        return m.group(0)

    return _PARAM.sub(one, text)


def _new_id(token: str, tag: str) -> str:
    """A new id of the same shape (letters kept, digits replaced), derived from (token, tag)."""
    digest = hashlib.sha256(f"{tag}\0{token}".encode()).hexdigest()
    digits = iter(str(int(digest, 16)))
    out = []
    for i, ch in enumerate(token):
        if ch.isdigit():
            d = next(digits)
            if i == 0 and token[0] != "0" and d == "0":
                d = "7"
            out.append(d)
        else:
            out.append(ch)
    new = "".join(out)
    return new if new != token else new[:-1] + str((int(new[-1]) + 1) % 10)


def _id_tokens(text: str, ivorn: str, event_key: str) -> set[str]:
    params = {m["name"]: m["value"].strip() for m in _PARAM.finditer(text)}
    tokens = {params.get("Burst_Id", ""), params.get("TrigID", ""), event_key}
    return {t for t in tokens if len(t) >= 4 and any(c.isdigit() for c in t) and t in text}


def _replace_token(text: str, token: str, new: str) -> str:
    return re.sub(rf"(?<![0-9.]){re.escape(token)}(?![0-9]|\.[0-9])", new, text)


def packet_ivorn(xml: bytes) -> str:
    m = _IVORN_ATTR.search(xml)
    if m is None:
        raise ValueError("no ivorn attribute on the VOEvent element")
    return m.group(2).decode().strip()


def packet_isotime(xml: bytes) -> datetime:
    m = _ISOTIME_EL.search(xml)
    if m is None:
        raise ValueError("no ISOTime in the packet")
    return parse_iso(m.group(2).decode())


def _describe(path: str, xml: bytes) -> Retimed:
    p = parse_packet(xml)
    return Retimed(
        path=path,
        xml=xml,
        ivorn=p.ivorn,
        mission=p.mission,
        event_key=p.event_key,
        trigger_time=p.trigger_time,
        ra_deg=p.ra_deg,
        dec_deg=p.dec_deg,
        error_deg=p.error_deg,
    )


def retime_bytes(raw: bytes, *, shift: timedelta, tag: str) -> bytes:
    """Shift every time of ``raw`` by ``shift`` and replace its trigger ids (derived from ``tag``)."""
    text = raw.decode("utf-8")
    old_ivorn = packet_ivorn(raw)
    event_key = parse_packet(raw).event_key
    tokens = _id_tokens(text, old_ivorn, event_key)
    text = _shift_iso_text(text, shift)
    text = _shift_tjd_sod(text, shift)
    for token in sorted(tokens, key=len, reverse=True):
        text = _replace_token(text, token, _new_id(token, tag))
    out = text.encode("utf-8")
    if packet_ivorn(out) == old_ivorn:  # no time nor id in the IVORN: make it fresh anyway
        suffix = "_" + hashlib.sha256(tag.encode()).hexdigest()[:8]
        out = out.replace(old_ivorn.encode(), (old_ivorn + suffix).encode())
    return out


def retime_packets(packets: Sequence[tuple[str, bytes]], *, when: datetime, tag: str) -> list[Retimed]:
    """Re-time the packets of one event (first one first): the first packet's ISOTime becomes
    ``when`` (rounded to the millisecond), the others keep their distance to it, and all get the
    same new trigger ids."""
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    when = when.astimezone(UTC)
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    shift = when - packet_isotime(packets[0][1])
    return [_describe(name, retime_bytes(raw, shift=shift, tag=tag)) for name, raw in packets]


def retime(name: str, raw: bytes, *, when: datetime, tag: str) -> Retimed:
    """One packet whose burst (ISOTime) is ``when``."""
    return retime_packets([(name, raw)], when=when, tag=tag)[0]
