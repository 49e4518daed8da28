"""Factories for the alerts unit tests: the real VOEvent corpus and synthetic packets."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "data" / "voevents"


def corpus_dir() -> Path:
    """The public VOEvent corpus shipped in tests/data/voevents (fails when it is absent)."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.fail(f"VOEvent corpus missing at {CORPUS}: it travels with the repository")
    return CORPUS


def manifest_rows() -> list[dict[str, str]]:
    with (corpus_dir() / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def synthetic_voevent(
    *,
    ivorn: str = "ivo://org.svom/fsc#sb30010101_eclairs-wakeup",
    role: str = "observation",
    version: str = "2.0",
    namespace: str = "http://www.ivoa.net/xml/VOEvent/v2.0",
    packet_type: str = "202",
    burst_id: str = "sb30010101",
    instrument: str = "ECLAIRs",
    isotime: str = "2030-01-01T01:02:03.456",
    ra: str = "123.4567",
    dec: str = "-12.3456",
    error: str = "0.0500",
    citations: str = "",
    extra_what: str = "",
    position: bool = True,
) -> str:
    """A small valid SVOM-like VOEvent; keyword arguments break it on purpose."""
    ivorn_attr = f' ivorn="{ivorn}"' if ivorn is not None else ""
    pos = (
        f"""<Position2D unit="deg"><Name1>RA</Name1><Name2>Dec</Name2>
            <Value2><C1>{ra}</C1><C2>{dec}</C2></Value2><Error2Radius>{error}</Error2Radius></Position2D>"""
        if position
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<voe:VOEvent xmlns:voe="{namespace}" role="{role}" version="{version}"{ivorn_attr}>
  <Who><AuthorIVORN>ivo://org.svom/fsc</AuthorIVORN><Date>2030-01-01T01:02:30</Date></Who>
  <What>
    <Param name="Packet_Type" value="{packet_type}"/>
    <Param name="Instrument" value="{instrument}"/>
    <Group name="Svom_Identifiers"><Param name="Burst_Id" value="{burst_id}"/></Group>
    {extra_what}
  </What>
  <WhereWhen><ObsDataLocation><ObservatoryLocation id="GEOLEO"/><ObservationLocation>
    <AstroCoordSystem id="UTC-ICRS-GEO"/>
    <AstroCoords coord_system_id="UTC-ICRS-GEO">
      <Time unit="s"><TimeInstant><ISOTime>{isotime}</ISOTime></TimeInstant></Time>
      {pos}
    </AstroCoords>
  </ObservationLocation></ObsDataLocation></WhereWhen>
  <Citations>{citations}</Citations>
</voe:VOEvent>
"""
