"""Mapping: request documents + site + night -> kernel input."""

from __future__ import annotations

import datetime as dt

from pyros_common.domain.programs.priority import effective_priority, weight
from pyros_common.domain.programs.quotas import Grade
from pyros_common.domain.requests import Request
from pyros_common.domain.sky.sites import SITES
from pyros_scheduler.kernel import schedule, validate
from pyros_scheduler.mapping import kernel_input

NIGHT = dt.date(2025, 12, 15)


def _request(name: str, ra: float, dec: float, **kw: object) -> Request:
    doc = {
        "name": name,
        "program": "P1",
        "user": "ana",
        "sequences": [
            {
                "name": "s1",
                "target": {"name": name, "ra_deg": ra, "dec_deg": dec},
                "date": NIGHT.isoformat(),
                "albums": [{"detector": "VIS", "plans": [{"filter": "r", "exposure_s": 60, "count": 5}]}],
            }
        ],
        **kw,
    }
    return Request.model_validate(doc)


def test_weights_follow_the_one_priority_scheme() -> None:
    """The scheduler weighs with the priority routines shows (programs.priority)."""
    assert weight(grade=Grade.A, priority_offset=0, nights_carried=0) == effective_priority(Grade.A) / 10
    assert weight(grade=Grade.A) == 5.0
    assert abs(weight(grade=Grade.B, priority_offset=2, nights_carried=1) - 3.2 * 1.2) < 1e-12
    assert weight(grade=Grade.C, priority_offset=0, nights_carried=0, alert_priority=5) == 1005.0
    assert weight(grade=Grade.C, priority_offset=3, alert_priority=90) == 1093.0
    # bases 20 apart: no offset lifts a grade over the next one
    assert weight(grade=Grade.B, priority_offset=5) < weight(grade=Grade.A, priority_offset=-5)


def test_requests_map_to_a_schedulable_night() -> None:
    reqs = [_request("M1", 83.63, 22.01), _request("south", 10.0, -80.0)]
    ni = kernel_input(reqs, site=SITES["gft-spm"], night=NIGHT, grades={"P1": Grade.A})
    seqs = {s.id: s for s in ni.kernel.sequences}
    assert seqs["M1/s1"].windows and not seqs["south/s1"].windows
    assert seqs["M1/s1"].weight == 5.0
    assert ni.dawn > ni.dusk
    res = schedule(ni.kernel)
    assert validate(ni.kernel, res) == []
    assert [p.id for p in res.placements] == ["M1/s1"]
    assert str(res.unscheduled["south/s1"]) == "never visible"
