"""Fuzz: malformed packets only ever give RejectedPacket (with a reason) or a valid packet."""

from __future__ import annotations

import math

from alerts_factories import synthetic_voevent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyros_alerts.domain.model import NormalizedPacket, RejectedPacket
from pyros_alerts.domain.parsing import MAX_PACKET_BYTES, parse_packet

VALID = synthetic_voevent().encode()

ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "abc", "1e400", "-0", "360", "-91", "1,5", "0x10", "١٢", "nan", "--1"]),
    st.text(max_size=8),
)

field_mutation = st.one_of(
    st.builds(lambda v: synthetic_voevent(ra=v), numbers),
    st.builds(lambda v: synthetic_voevent(dec=v), numbers),
    st.builds(lambda v: synthetic_voevent(error=v), numbers),
    st.builds(lambda v: synthetic_voevent(isotime=v), st.text(max_size=30)),
    st.builds(lambda v: synthetic_voevent(version=v), st.sampled_from(["1.1", "", "2", "2.0 ", "3.0"])),
    st.builds(
        lambda v: synthetic_voevent(namespace=v),
        st.sampled_from(
            ["", "http://www.ivoa.net/xml/VOEvent/v1.1", "urn:x", "http://www.ivoa.net/xml/VOEvent/v2.0/"]
        ),
    ),
    st.builds(lambda v: synthetic_voevent(ivorn=v), st.text(max_size=20)),
    st.builds(lambda v: synthetic_voevent(role=v), st.text(max_size=12)),
    st.builds(lambda v: synthetic_voevent(packet_type=v), st.text(max_size=10)),
    st.builds(lambda v: synthetic_voevent(burst_id=v), st.text(max_size=12)),
    st.builds(lambda: synthetic_voevent(position=False)),
).map(lambda s: s.encode("utf-8", errors="surrogatepass"))


@st.composite
def byte_mutation(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete_tag", "encoding", "bomb", "huge"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 20))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at]) + draw(st.binary(max_size=64)) + bytes(data[at:])
    if kind == "delete_tag":
        tag = draw(
            st.sampled_from(
                [b"<What>", b"</What>", b"<WhereWhen>", b"<ISOTime>", b"<C1>", b"<Value2>", b"</voe:VOEvent>"]
            )
        )
        return bytes(data).replace(tag, b"", 1)
    if kind == "encoding":
        enc = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "shift_jis", "bogus-enc"]))
        text = VALID.decode().replace('encoding="UTF-8"', f'encoding="{enc}"')
        raw = text.encode("utf-8") if enc == "bogus-enc" else text.encode(enc, errors="replace")
        if draw(st.booleans()):
            raw = raw + "é€".encode()  # bytes that disagree with the declaration
        return raw
    if kind == "bomb":
        body = VALID.split(b"?>", 1)[1].replace(b"<Who>", b"<Who>&c;", 1)
        return ENTITY_BOMB + body
    padding = b"<!-- " + b"x" * (MAX_PACKET_BYTES + draw(st.integers(0, 10))) + b" -->"
    return bytes(data).replace(b"<Who>", padding + b"<Who>", 1)


packets = st.one_of(field_mutation, byte_mutation(), st.binary(max_size=512))


def _check_valid(p: NormalizedPacket) -> None:
    assert p.ivorn.startswith("ivo://")
    assert p.role in ("observation", "prediction", "utility", "test")
    assert p.trigger_time.tzinfo is not None
    assert p.raw_size <= MAX_PACKET_BYTES
    if p.ra_deg is not None:
        assert p.dec_deg is not None and p.error_deg is not None
        assert 0 <= p.ra_deg < 360 and -90 <= p.dec_deg <= 90
        assert math.isfinite(p.error_deg) and 0 <= p.error_deg < 180


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(packets)
def test_parser_only_rejects_or_returns_valid(raw: bytes) -> None:
    try:
        p = parse_packet(raw)
    except RejectedPacket as exc:
        assert exc.reason.strip()
    else:
        _check_valid(p)
