"""The corpus side of re-timing: packets of tests/data/voevents, re-timed by the product's own
``pyros_alerts.domain.retime`` (the one the CLI's ``pyros alerts send --now`` uses)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pyros_alerts.domain import retime as _r
from pyros_alerts.domain.retime import Retimed, packet_isotime, parse_iso

__all__ = [
    "CORPUS",
    "Retimed",
    "manifest",
    "manifest_row",
    "packet_isotime",
    "parse_iso",
    "read_packet",
    "retime",
    "retime_event",
]

CORPUS = Path(__file__).resolve().parents[1] / "data" / "voevents"


def manifest() -> list[dict[str, str]]:
    """The corpus MANIFEST.tsv rows."""
    with (CORPUS / "MANIFEST.tsv").open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def manifest_row(path: str) -> dict[str, str]:
    for row in manifest():
        if row["path"] == path:
            return row
    raise KeyError(f"{path} is not in {CORPUS / 'MANIFEST.tsv'}")


def read_packet(path: str) -> bytes:
    return (CORPUS / path).read_bytes()


def retime_event(paths: Sequence[str], *, when: datetime, tag: str) -> list[Retimed]:
    """The corpus packets ``paths`` of one event, re-timed so the first one's burst is ``when``."""
    return _r.retime_packets([(p, read_packet(p)) for p in paths], when=when, tag=tag)


def retime(path: str, *, when: datetime, tag: str) -> Retimed:
    """One corpus packet whose burst (ISOTime) is ``when``."""
    return retime_event([path], when=when, tag=tag)[0]
