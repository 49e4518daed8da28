"""Mapping: request documents + site + night -> kernel input."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

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


def _mapped(reqs: list[Request], cache: object = None, **kw: object) -> list[tuple[object, ...]]:
    from pyros_scheduler.mapping import MappingCache

    assert cache is None or isinstance(cache, MappingCache)
    ni = kernel_input(reqs, site=SITES["gft-spm"], night=NIGHT, grades={"P1": Grade.A}, cache=cache, **kw)  # type: ignore[arg-type]
    tr = ni.kernel.transition
    n = len(ni.kernel.sequences)
    costs = tuple(tr.cost(i, j) for i in range(n) for j in range(n))
    # Windows computed alone or in a batch may differ in the last bits (vectorised sums).
    return [
        (replace(s, windows=tuple((round(a, 6), round(b, 6)) for a, b in s.windows)), i.request, i.target)
        for s, i in zip(ni.kernel.sequences, ni.info, strict=True)
    ] + [tuple(round(c, 6) for c in costs)]


def test_the_cache_reuses_an_unchanged_prefix_and_maps_like_a_fresh_call() -> None:
    """The service's cache reuses the last call's output for the requests that are the same
    objects, in the same order; anything else (a request replaced in the middle, one added,
    a skipped id, other grades) maps exactly as an uncached call does."""
    from pyros_scheduler.mapping import MappingCache

    cache = MappingCache()
    reqs = [_request(f"T{k}", 20.0 * k, 10.0 + k) for k in range(6)]
    first = kernel_input(reqs, site=SITES["gft-spm"], night=NIGHT, grades={"P1": Grade.A}, cache=cache)
    assert _mapped(reqs, cache) == _mapped(reqs)
    grown = [*reqs, _request("new", 100.0, 30.0)]
    again = kernel_input(grown, site=SITES["gft-spm"], night=NIGHT, grades={"P1": Grade.A}, cache=cache)
    assert all(a is b for a, b in zip(first.kernel.sequences, again.kernel.sequences, strict=False))
    assert _mapped(grown, cache) == _mapped(grown)
    revised = [*grown[:2], _request("T2", 200.0, 40.0), *grown[3:]]
    assert _mapped(revised, cache) == _mapped(revised)
    assert _mapped(grown, cache, skip={"T4/s1"}) == _mapped(grown, skip={"T4/s1"})
    assert _mapped(grown, cache) == _mapped(grown)
    ni = kernel_input(grown, site=SITES["gft-spm"], night=NIGHT, grades={"P1": Grade.B}, cache=cache)
    assert (
        ni.kernel.sequences[0].weight
        == kernel_input(grown, site=SITES["gft-spm"], night=NIGHT, grades={"P1": Grade.B})
        .kernel.sequences[0]
        .weight
    )
