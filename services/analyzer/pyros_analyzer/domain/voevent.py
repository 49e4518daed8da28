"""Our own VOEvent 2.0 for an afterglow candidate (voevent-parse), validated against the schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime


class InvalidVoevent(ValueError):
    """The packet we built does not pass the VOEvent 2.0 schema."""


@dataclass(frozen=True)
class CandidateReport:
    """What the packet says about one candidate."""

    alert_ivorn: str
    candidate_id: str  # unique within our stream (the IVORN's local part)
    ra_deg: float
    dec_deg: float
    error_arcsec: float
    magnitude: float
    magnitude_error: float
    filter: str
    observed_at: datetime  # mid-exposure of the latest detection (UTC)
    since_trigger_s: float
    confidence: float
    n_detections: int
    fading_slope: float  # d mag / d log10 t
    telescope: str = "GFT"


def build(
    report: CandidateReport, *, stream: str, author_ivorn: str, now: datetime, test: bool = False
) -> bytes:
    """The packet (bytes, UTF-8 XML): role observation (or test), citing the alert's IVORN."""
    import voeventparse as vp
    from lxml import etree

    stream = stream.removeprefix("ivo://")
    local = re.sub(r"[^A-Za-z0-9_.~-]", "_", report.candidate_id)
    role = vp.definitions.roles.test if test else vp.definitions.roles.observation
    v = vp.Voevent(stream=stream, stream_id=local, role=role)
    vp.set_who(v, date=now, author_ivorn=author_ivorn.removeprefix("ivo://"))
    vp.set_author(v, title="PyROS analyzer", shortName=report.telescope, contactName="PyROS")
    params = [
        vp.Param("magnitude", value=f"{report.magnitude:.3f}", unit="mag", ucd="phot.mag", dataType="float"),
        vp.Param(
            "magnitude_error",
            value=f"{report.magnitude_error:.3f}",
            unit="mag",
            ucd="stat.error;phot.mag",
            dataType="float",
        ),
        vp.Param("filter", value=report.filter, ucd="instr.filter"),
        vp.Param(
            "error_radius",
            value=f"{report.error_arcsec:.3f}",
            unit="arcsec",
            ucd="stat.error;pos.eq",
            dataType="float",
        ),
        vp.Param(
            "time_since_trigger",
            value=f"{report.since_trigger_s:.1f}",
            unit="s",
            ucd="time.interval",
            dataType="float",
        ),
        vp.Param("confidence", value=f"{report.confidence:.3f}", ucd="stat.probability", dataType="float"),
        vp.Param("n_detections", value=str(report.n_detections), ucd="meta.number", dataType="int"),
        vp.Param(
            "fading_slope",
            value=f"{report.fading_slope:.3f}",
            unit="mag/dex",
            ucd="src.var",
            dataType="float",
        ),
        vp.Param("telescope", value=report.telescope, ucd="instr.tel"),
    ]
    v.What.append(vp.Group(params, name="afterglow_candidate"))
    vp.add_where_when(
        v,
        coords=vp.Position2D(
            ra=round(report.ra_deg, 7),
            dec=round(report.dec_deg, 7),
            err=round(report.error_arcsec / 3600.0, 7),
            units="deg",
            system=vp.definitions.sky_coord_system.utc_icrs_topo,
        ),
        obs_time=report.observed_at,
        observatory_location=vp.definitions.observatory_location.geosurface,
    )
    # voevent-parse 1.0.3's add_how / add_citations use collections.Iterable (gone in 3.10): by hand
    etree.SubElement(v, "How")
    etree.SubElement(v.How, "Description")
    v.How.Description[-1] = (
        f"Optical afterglow candidate found by PyROS ({report.telescope}) in the error circle of "
        f"{report.alert_ivorn}"
    )
    vp.add_why(v, importance=round(report.confidence, 3))
    v.Why.append(
        vp.Inference(
            probability=round(report.confidence, 3),
            relation="associated",
            name="optical afterglow",
            concept="process.variation.burst;em.opt",
        )
    )
    etree.SubElement(v, "Citations")
    v.Citations.append(vp.EventIvorn(ivorn=report.alert_ivorn, cite_type=vp.definitions.cite_types.followup))
    if not vp.valid_as_v2_0(v):
        try:
            vp.assert_valid_as_v2_0(v)
        except Exception as exc:
            raise InvalidVoevent(f"our VOEvent fails the schema: {exc}") from exc
    return bytes(vp.dumps(v))


def validate(packet: bytes) -> None:
    """InvalidVoevent unless ``packet`` is a schema-valid VOEvent 2.0."""
    import voeventparse as vp

    try:
        v = vp.loads(packet)
        vp.assert_valid_as_v2_0(v)
    except Exception as exc:
        raise InvalidVoevent(str(exc)) from exc
