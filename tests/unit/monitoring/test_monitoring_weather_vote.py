"""The weather vote (pure): the issue's five acceptance cases, then properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_monitoring.domain.weather import (
    VoteConfig,
    VoteMemory,
    WeatherVote,
    dew_point_c,
    quantities_from_values,
    weighted_majority,
    weighted_median,
)

T0 = datetime(2026, 12, 15, 2, 0, tzinfo=UTC)
CFG = VoteConfig(max_age_s=60, confirm_s=60, suspect_after_s=300, reopen_after_s=600)
CLEAR = {"rain": False, "clouds": -30.0, "humidity": 40.0, "wind": 4.0}


def feed(vote: WeatherVote, at: datetime, **sources: dict[str, float | bool]) -> None:
    for name, values in sources.items():
        vote.observe(name, at, values)  # type: ignore[arg-type]


def run(vote: WeatherVote, seconds: int, step: int = 10, **sources: dict[str, float | bool]) -> list[bool]:
    """Feed the same readings every ``step`` s for ``seconds`` from T0; the verdicts' safe flags."""
    out = []
    for t in range(0, seconds + 1, step):
        now = T0 + timedelta(seconds=t)
        feed(vote, now, **sources)
        out.append(vote.evaluate(now).safe)
    return out


# --- acceptance ------------------------------------------------------------------------------


def test_one_drifting_source_of_three_is_flagged_within_the_threshold_and_the_verdict_holds() -> None:
    vote = WeatherVote(CFG)
    flagged_at = None
    verdicts = []
    for t in range(0, 3600, 10):
        now = T0 + timedelta(seconds=t)
        drift = 40.0 + t / 60.0  # humidity climbs 1 %/min: unsafe (85 %) after 45 min
        feed(vote, now, a=CLEAR, b={**CLEAR, "humidity": 41.0}, c={**CLEAR, "humidity": drift})
        v = vote.evaluate(now)
        verdicts.append(v.safe)
        c = next(s for s in v.sources if s.source == "c")
        if c.suspect and flagged_at is None:
            flagged_at = t
            assert "humidity" in c.reason and "others" in c.reason, c.reason
    assert all(verdicts), "the drifter changed the verdict"
    # it strays more than 10 % from the median (b's 41 %) after 660 s, and is flagged 300 s later
    assert flagged_at is not None and 660 + 300 <= flagged_at <= 660 + 300 + 20
    last = vote.evaluate(T0 + timedelta(seconds=3590))
    hum = next(q for q in last.quantities if q.quantity == "humidity")
    assert "c" not in hum.voters and hum.value is not None and float(hum.value) < 45


def test_two_sources_saying_rain_is_unsafe_at_once() -> None:
    vote = WeatherVote(CFG)
    run(vote, 60, a=CLEAR, b=CLEAR, c=CLEAR)
    now = T0 + timedelta(seconds=70)
    feed(vote, now, a={**CLEAR, "rain": True}, b={**CLEAR, "rain": True}, c=CLEAR)
    v = vote.evaluate(now)
    assert not v.safe and "rain" in v.reason and "a, b" in v.reason, v.reason


def test_one_source_saying_rain_is_unsafe_only_after_confirmation() -> None:
    vote = WeatherVote(CFG)
    run(vote, 60, a=CLEAR, b=CLEAR, c=CLEAR)
    start = T0 + timedelta(seconds=70)
    safe = []
    for t in range(0, 90, 10):
        now = start + timedelta(seconds=t)
        feed(vote, now, a={**CLEAR, "rain": True}, b=CLEAR, c=CLEAR)
        v = vote.evaluate(now)
        safe.append(v.safe)
        if t < 60:
            rain = next(q for q in v.quantities if q.quantity == "rain")
            assert rain.pending == ("a",)
    assert safe == [True] * 6 + [False] * 3  # unsafe from 60 s of the claim on
    assert "confirmed" in vote.evaluate(start + timedelta(seconds=80)).reason


def test_all_sources_silent_is_unsafe() -> None:
    vote = WeatherVote(CFG)
    assert not vote.evaluate(T0).safe  # nothing ever reported
    run(vote, 60, a=CLEAR, b=CLEAR, c=CLEAR)
    assert vote.evaluate(T0 + timedelta(seconds=100)).safe  # 40 s old: still voting
    v = vote.evaluate(T0 + timedelta(seconds=121))  # 61 s old: dropped
    assert not v.safe and "no source measures rain" in v.reason
    assert all(not s.fresh for s in v.sources)


def test_reopening_waits_for_the_continuous_safe_period() -> None:
    vote = WeatherVote(CFG)
    run(vote, 60, a=CLEAR, b=CLEAR, c=CLEAR)
    wet = {**CLEAR, "rain": True}
    now = T0 + timedelta(seconds=70)
    feed(vote, now, a=wet, b=wet, c=wet)
    assert not vote.evaluate(now).safe
    dry_from = now + timedelta(seconds=10)
    flips = []
    for t in range(0, 1300, 10):
        at = dry_from + timedelta(seconds=t)
        # a brief shower 300 s into the dry spell restarts the wait
        values = wet if t == 300 else CLEAR
        feed(vote, at, a=values, b=values, c=values)
        v = vote.evaluate(at)
        flips.append((t, v.safe, v.safe_now))
    first_safe = next(t for t, safe, _ in flips if safe)
    assert first_safe == 300 + 10 + 600 - 10  # 600 s after the last unsafe evaluation (t=300)
    assert all(now_ok for t, _, now_ok in flips if t != 300)


# --- smaller pieces --------------------------------------------------------------------------


def test_complementarity_needs_clouds_and_rain() -> None:
    vote = WeatherVote(CFG)
    feed(vote, T0, rain_only={"rain": False})
    v = vote.evaluate(T0)
    assert not v.safe and "no source measures clouds" in v.reason
    feed(vote, T0, clouds_only={"clouds": -30.0})
    assert vote.evaluate(T0).safe
    assert vote.evaluate(T0).sky == "clear"


def test_an_operator_can_exclude_a_source() -> None:
    vote = WeatherVote(CFG)
    vote.exclude("a")
    wet = {**CLEAR, "rain": True}
    for t in (0, 60, 120):  # a's rain lasts 120 s, past the confirmation window
        feed(vote, T0 + timedelta(seconds=t), a=wet, b=CLEAR, c=CLEAR)
    v = vote.evaluate(T0 + timedelta(seconds=120))
    a = next(s for s in v.sources if s.source == "a")
    assert v.safe and a.excluded and a.safe is None and "operator" in a.reason
    assert vote.memory.excluded == ("a",)
    vote.exclude("a", excluded=False)
    assert not vote.evaluate(T0 + timedelta(seconds=120)).safe  # back in: its 120 s claim counts


def test_memory_keeps_the_reopening_wait_across_a_restart() -> None:
    vote = WeatherVote(CFG)
    run(vote, 30, a=CLEAR, b=CLEAR)
    wet = {**CLEAR, "rain": True}
    feed(vote, T0 + timedelta(seconds=40), a=wet, b=wet)
    assert not vote.evaluate(T0 + timedelta(seconds=40)).safe
    restarted = WeatherVote(CFG, memory=vote.memory)
    later = T0 + timedelta(seconds=100)
    feed(restarted, later, a=CLEAR, b=CLEAR)
    v = restarted.evaluate(later)
    assert v.safe_now and not v.safe and v.reopen_at == T0 + timedelta(seconds=640)


def test_quantities_from_a_simulated_station() -> None:
    q = quantities_from_values(
        {
            "wind_ms": 4.2,
            "humidity_pct": 40.0,
            "ambient_c": 8.0,
            "sky_temp_c": -22.0,
            "rain": False,
            "source": "x",
        }
    )
    assert q["clouds"] == -30.0 and q["rain"] is False and q["wind"] == 4.2
    assert abs(float(q["dew_point"]) - (8.0 - dew_point_c(8.0, 40.0))) < 1e-9
    assert 10 < float(q["dew_point"]) < 14  # 8 °C at 40 %: dew point about -4.6 °C


def test_dew_point_at_saturation_is_the_air_temperature() -> None:
    assert abs(dew_point_c(12.0, 100.0) - 12.0) < 1e-9


# --- properties ------------------------------------------------------------------------------

weights = st.floats(min_value=0.01, max_value=1.0)
values = st.floats(min_value=-50, max_value=50, allow_nan=False)


@given(st.lists(st.tuples(values, weights), min_size=1, max_size=9))
def test_weighted_median_lies_within_the_values_and_ignores_order(pairs: list[tuple[float, float]]) -> None:
    m = weighted_median(pairs)
    assert min(v for v, _ in pairs) <= m <= max(v for v, _ in pairs)
    assert weighted_median(list(reversed(pairs))) == m


@given(st.lists(st.tuples(values, weights), min_size=3, max_size=9), st.floats(min_value=1e3, max_value=1e6))
def test_weighted_median_resists_one_wild_value_when_it_weighs_less_than_half(
    pairs: list[tuple[float, float]], wild: float
) -> None:
    light = min(w for _, w in pairs) / 10
    m = weighted_median([*pairs, (wild, light)])
    assert m <= max(v for v, _ in pairs)


@given(st.lists(st.tuples(st.booleans(), weights), min_size=1, max_size=9))
def test_weighted_majority_says_rain_only_with_half_the_weight(pairs: list[tuple[bool, float]]) -> None:
    yes = sum(w for v, w in pairs if v)
    assert weighted_majority(pairs) == (yes >= sum(w for _, w in pairs) / 2 and yes > 0)


source_values = st.fixed_dictionaries(
    {
        "rain": st.booleans(),
        "clouds": st.floats(min_value=-45, max_value=0),
        "humidity": st.floats(min_value=0, max_value=100),
        "wind": st.floats(min_value=0, max_value=40),
    }
)


@settings(max_examples=200)
@given(st.lists(source_values, min_size=1, max_size=5), st.integers(min_value=0, max_value=200))
def test_safe_means_every_required_quantity_is_voted_and_nobody_claims_unsafe_for_long(
    sources: list[dict[str, float | bool]], age_s: int
) -> None:
    vote = WeatherVote(CFG)
    for i, vals in enumerate(sources):
        vote.observe(f"s{i}", T0, vals)  # type: ignore[arg-type]
    v = vote.evaluate(T0 + timedelta(seconds=age_s))
    if age_s > CFG.max_age_s:
        assert not v.safe  # everything stale: unknown is not safe
    if any(s["rain"] for s in sources) and len([s for s in sources if s["rain"]]) >= 2:
        assert not v.safe  # two claims: at once
    if v.safe:
        for q in CFG.required:
            assert next(x for x in v.quantities if x.quantity == q).voters


@settings(max_examples=100)
@given(st.lists(source_values, min_size=2, max_size=5), st.integers(min_value=0, max_value=59))
def test_a_lone_new_claim_never_closes_before_the_confirmation_window(
    sources: list[dict[str, float | bool]], after_s: int
) -> None:
    vote = WeatherVote(CFG)
    safe_sources = [{**s, "rain": False, "clouds": -30.0, "humidity": 40.0, "wind": 4.0} for s in sources]
    for i, vals in enumerate(safe_sources):
        vote.observe(f"s{i}", T0, vals)  # type: ignore[arg-type]
    assert vote.evaluate(T0).safe
    vote.observe("s0", T0, {"rain": True})  # a later reading at the same instant: it claims rain
    assert vote.evaluate(T0 + timedelta(seconds=after_s)).safe


def test_memory_is_small_and_round_trips() -> None:
    m = VoteMemory(ever_safe=True, last_unsafe_at=T0, excluded=("plc",))
    assert WeatherVote(CFG, memory=m).memory == m
