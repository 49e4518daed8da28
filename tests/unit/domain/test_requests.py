import copy
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pyros_common.domain.requests import Request, Strategy
from pyros_common.domain.requests.document import (
    SCHEMA_ID,
    export_document,
    export_json,
    import_document,
    json_schema,
)

EXAMPLE: dict[str, Any] = {
    "schema": "pyros.request/1",
    "name": "M31 monitoring",
    "program": "GRB",
    "strategy": "best_effort",
    "sequences": [
        {
            "name": "m31-r",
            "target": {"name": "M31", "ra_deg": 10.6847, "dec_deg": 41.2690},
            "date": "tonight",
            "carry_over_nights": 0,
            "mandatory": False,
            "priority_offset": 0,
            "constraints": {"min_altitude_deg": 30, "max_airmass": 2.0, "min_moon_separation_deg": 20},
            "albums": [
                {
                    "detector": "VIS",
                    "plans": [
                        {"filter": "r", "exposure_s": 60, "count": 5, "dither_arcsec": [[0, 0], [10, 10]]}
                    ],
                }
            ],
        }
    ],
}


def _errors(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as err:
        import_document(doc, user="alice")
    return [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]


def test_example_imports_with_defaults() -> None:
    r = import_document(EXAMPLE, user="alice")
    assert r.user == "alice" and r.strategy is Strategy.BEST_EFFORT and r.kind == "routine"
    seq = r.sequences[0]
    assert seq.date == "tonight" and seq.constraints.max_moon_illumination is None
    assert seq.albums[0].plans[0].dither_arcsec == [(0.0, 0.0), (10.0, 10.0)]
    assert export_document(r)["schema"] == SCHEMA_ID


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("sequences", 0, "albums", 0, "plans", 0, "count"), 0, "sequences.0.albums.0.plans.0.count"),
        (
            ("sequences", 0, "albums", 0, "plans", 0, "exposure_s"),
            -1,
            "sequences.0.albums.0.plans.0.exposure_s",
        ),
        (("sequences", 0, "target", "dec_deg"), 91, "sequences.0.target.dec_deg"),
        (("sequences", 0, "priority_offset"), 6, "sequences.0.priority_offset"),
        (("sequences", 0, "carry_over_nights"), 8, "sequences.0.carry_over_nights"),
        (("sequences", 0, "date"), "tomorrow", "sequences.0.date"),
        (
            ("sequences", 0, "constraints", "max_moon_illumination"),
            1.5,
            "sequences.0.constraints.max_moon_illumination",
        ),
        (("sequences", 0, "albums", 0, "detector"), "UV", "sequences.0.albums.0.detector"),
        (("strategy",), "greedy", "strategy"),
        (("schema",), "pyros.request/2", "schema"),
    ],
)
def test_validation_errors_name_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    doc = copy.deepcopy(EXAMPLE)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    assert any(loc.startswith(field) for loc in _errors(doc))


def test_unknown_fields_and_duplicates_refused() -> None:
    doc = copy.deepcopy(EXAMPLE)
    doc["sequences"][0]["albums"].append(copy.deepcopy(doc["sequences"][0]["albums"][0]))
    assert "sequences.0.albums" in _errors(doc)
    doc = copy.deepcopy(EXAMPLE)
    doc["colour"] = "blue"
    assert "colour" in _errors(doc)


def test_alert_fields_only_for_alerts() -> None:
    doc = copy.deepcopy(EXAMPLE) | {"alert_id": "ivo://svom/123"}
    with pytest.raises(ValidationError, match="only allowed with kind 'alert'"):
        import_document(doc, user="alice")
    doc["kind"] = "alert"
    doc["valid_from"] = "2025-01-01T00:00:00+02:00"
    doc["valid_until"] = "2025-01-01T12:00:00Z"
    r = import_document(doc, user="alert-bot")
    assert r.valid_from == dt.datetime(2024, 12, 31, 22, tzinfo=dt.UTC)
    assert export_document(r)["valid_from"] == "2024-12-31T22:00:00Z"
    doc["valid_until"] = "2024-12-31T00:00:00Z"
    with pytest.raises(ValidationError, match="valid_until must be after valid_from"):
        import_document(doc, user="alert-bot")


def test_json_schema_has_descriptions() -> None:
    schema = json_schema()
    assert "schema" in schema["properties"]
    plan = schema["$defs"]["Plan"]["properties"]
    assert "seconds" in plan["exposure_s"]["description"]


# ---- round trip (hypothesis)

finite = {"allow_nan": False, "allow_infinity": False}
names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=20,
).filter(lambda s: not s.isspace() and s.strip() != "")
plans = st.fixed_dictionaries(
    {
        "filter": st.sampled_from(["g", "r", "i", "z", "J", "H"]),
        "exposure_s": st.floats(0.001, 3600, **finite),
        "count": st.integers(1, 1000),
        "dither_arcsec": st.lists(
            st.tuples(st.floats(-600, 600, **finite), st.floats(-600, 600, **finite)), max_size=4
        ),
    }
)
albums = st.lists(st.sampled_from(["VIS", "NIR"]), min_size=1, max_size=2, unique=True).flatmap(
    lambda dets: st.tuples(*[st.lists(plans, min_size=1, max_size=3) for _ in dets]).map(
        lambda ps: [{"detector": d, "plans": p} for d, p in zip(dets, ps, strict=True)]
    )
)
constraints = st.fixed_dictionaries(
    {},
    optional={
        "min_altitude_deg": st.floats(0, 89.9, **finite),
        "max_airmass": st.none() | st.floats(1, 10, **finite),
        "min_moon_separation_deg": st.none() | st.floats(0, 180, **finite),
        "max_moon_illumination": st.none() | st.floats(0, 1, **finite),
    },
)
sequence = st.fixed_dictionaries(
    {
        "target": st.fixed_dictionaries(
            {
                "name": names,
                "ra_deg": st.floats(0, 359.999, **finite),
                "dec_deg": st.floats(-90, 90, **finite),
            }
        ),
        "albums": albums,
    },
    optional={
        "date": st.just("tonight") | st.dates(dt.date(2024, 1, 1), dt.date(2030, 12, 31)),
        "carry_over_nights": st.integers(0, 7),
        "mandatory": st.booleans(),
        "priority_offset": st.integers(-5, 5),
        "constraints": constraints,
    },
)
aware = st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    seqs = draw(st.lists(sequence, min_size=1, max_size=3))
    for k, s in enumerate(seqs):
        s["name"] = f"seq-{k}"
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "name": draw(names),
        "program": draw(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)),
        "strategy": draw(st.sampled_from(["best_effort", "all_or_nothing"])),
        "sequences": seqs,
        "priority": draw(st.none() | st.integers(0, 100)),
    }
    if draw(st.booleans()):
        start = draw(aware)
        doc |= {"kind": "alert", "alert_id": draw(names), "valid_from": start.isoformat()}
        doc["valid_until"] = (start + dt.timedelta(hours=draw(st.integers(1, 48)))).isoformat()
    return doc


@settings(max_examples=60, deadline=None)
@given(documents())
def test_export_then_import_gives_an_equal_request(doc: dict[str, Any]) -> None:
    request = import_document(doc, user="alice", id="r-1")
    text = export_json(request)
    again = import_document(text, user="alice", id="r-1")
    assert again == request
    assert isinstance(again, Request)
    # and the document itself is a fixed point
    assert json.loads(export_json(again)) == json.loads(text)


def test_docs_example_is_a_valid_document() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[3] / "docs" / "request-document.md").read_text()
    block = re.findall(r"```json\n(.*?)```", text, re.S)[0]
    request = import_document(json.loads(block), user="alice")
    assert [a.detector for a in request.sequences[0].albums] == ["VIS", "NIR"]
