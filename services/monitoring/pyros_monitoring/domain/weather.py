"""The weather vote: several sources, one verdict per site (pure; time is handed in).

Each source reports what it measures. Per quantity, the sources that measure it vote: the
freshness-weighted median for a number, the weighted majority for rain. The verdict:

- **redundancy**: a source silent for longer than ``max_age_s`` no longer votes;
- **validity**: an unsafe reading from two sources is acted on at once, from one source only
  after it has lasted ``confirm_s``;
- **a failed source found**: a source that disagrees with the consensus of the others (at least
  two of them) for ``suspect_after_s`` is suspect, with a reason, and no longer votes; an
  operator can exclude a source for good;
- **complementarity**: every required quantity (rain and clouds by default) must be measured by
  a voting source and safe: unknown is not safe;
- **reopening** after an unsafe verdict waits for ``reopen_after_s`` of continuous safety.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Quantity = Literal["clouds", "rain", "wind", "humidity", "dew_point", "sky_quality"]
QUANTITIES: tuple[Quantity, ...] = ("clouds", "rain", "wind", "humidity", "dew_point", "sky_quality")
UNITS: dict[Quantity, str] = {
    "clouds": "°C (sky - ambient)",
    "rain": "",
    "wind": "m/s",
    "humidity": "%",
    "dew_point": "°C (ambient - dew point)",
    "sky_quality": "mag/arcsec²",
}
Value = float | bool
Sky = Literal["clear", "cloudy", "overcast", "unknown"]


@dataclass(frozen=True)
class Limits:
    """Where each quantity turns unsafe, and how far a source may stray from the others."""

    clear_below_c: float = -25.0  # sky - ambient below this: clear
    overcast_above_c: float = -15.0  # above this: overcast, unsafe (rain is coming)
    wind_max_ms: float = 15.0
    humidity_max_pct: float = 85.0
    dew_margin_min_c: float = 2.0
    # tolerance of a source against the consensus of the others, per numeric quantity
    tolerance: Mapping[str, float] = field(
        default_factory=lambda: {
            "clouds": 8.0,
            "wind": 5.0,
            "humidity": 10.0,
            "dew_point": 3.0,
            "sky_quality": 1.0,
        }
    )

    def unsafe(self, quantity: Quantity, value: Value) -> str | None:
        """Why ``value`` of ``quantity`` is unsafe, or None (sky quality never is)."""
        if quantity == "rain":
            return "rain" if value is True else None
        v = float(value)
        if quantity == "clouds" and v > self.overcast_above_c:
            return f"overcast (sky - ambient {v:.1f} °C > {self.overcast_above_c:g})"
        if quantity == "wind" and v > self.wind_max_ms:
            return f"wind {v:.1f} m/s > {self.wind_max_ms:g}"
        if quantity == "humidity" and v > self.humidity_max_pct:
            return f"humidity {v:.0f} % > {self.humidity_max_pct:g}"
        if quantity == "dew_point" and v < self.dew_margin_min_c:
            return f"dew point {v:.1f} °C from ambient < {self.dew_margin_min_c:g}"
        return None

    def sky(self, clouds: float | None) -> Sky:
        if clouds is None:
            return "unknown"
        if clouds < self.clear_below_c:
            return "clear"
        return "overcast" if clouds > self.overcast_above_c else "cloudy"


@dataclass(frozen=True)
class VoteConfig:
    """The knobs of the vote (monitoring's settings fill them)."""

    max_age_s: float = 60.0
    confirm_s: float = 60.0
    suspect_after_s: float = 300.0
    reopen_after_s: float = 600.0
    required: tuple[Quantity, ...] = ("rain", "clouds")
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        for name in ("max_age_s", "confirm_s", "suspect_after_s", "reopen_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        unknown = set(self.required) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown required quantities {sorted(unknown)}; known: {list(QUANTITIES)}")


def dew_point_c(ambient_c: float, humidity_pct: float) -> float:
    """Magnus formula (Alduchov & Eskridge 1996), good to 0.35 °C from -45 to 60 °C."""
    rh = min(100.0, max(1e-3, humidity_pct))
    a, b = 17.625, 243.04
    g = math.log(rh / 100.0) + a * ambient_c / (b + ambient_c)
    return b * g / (a - g)


def _number(values: Mapping[str, object], *keys: str) -> float | None:
    for k in keys:
        v = values.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


def quantities_from_values(values: Mapping[str, object]) -> dict[Quantity, Value]:
    """What a weather device status says, as vote quantities (unknown keys are ignored)."""
    out: dict[Quantity, Value] = {}
    ambient = _number(values, "ambient_c", "temperature_c")
    clouds = _number(values, "sky_minus_ambient_c")
    sky_t = _number(values, "sky_temp_c")
    if clouds is None and sky_t is not None and ambient is not None:
        clouds = sky_t - ambient
    if clouds is not None:
        out["clouds"] = clouds
    rain = values.get("rain")
    if isinstance(rain, bool):
        out["rain"] = rain
    elif isinstance(rain, int | float) and not isinstance(rain, bool):
        out["rain"] = rain > 0  # a rain rate or a wet count
    wind = _number(values, "wind_ms")
    if wind is not None:
        out["wind"] = wind
    humidity = _number(values, "humidity_pct")
    if humidity is not None:
        out["humidity"] = humidity
    dew = _number(values, "dew_point_c")
    if ambient is not None and (dew is not None or humidity is not None):
        out["dew_point"] = ambient - (dew if dew is not None else dew_point_c(ambient, humidity or 0.0))
    sqm = _number(values, "sky_quality_mag", "sqm_mag_arcsec2")
    if sqm is not None:
        out["sky_quality"] = sqm
    return out


def weighted_median(pairs: Iterable[tuple[float, float]]) -> float:
    """Median of (value, weight) pairs with positive weights: the lower weighted median's midpoint
    with the next value when the weights split exactly in half."""
    items = sorted((v, w) for v, w in pairs if w > 0)
    if not items:
        raise ValueError("weighted_median of nothing")
    total = sum(w for _, w in items)
    acc = 0.0
    for i, (v, w) in enumerate(items):
        acc += w
        if acc > total / 2 + 1e-12:
            return v
        if abs(acc - total / 2) <= 1e-12:
            return (v + items[i + 1][0]) / 2
    return items[-1][0]


def weighted_majority(pairs: Iterable[tuple[bool, float]]) -> bool:
    """True when the weight of True is more than half (a tie says True: unknown is not safe)."""
    yes = no = 0.0
    for v, w in pairs:
        if v:
            yes += w
        else:
            no += w
    return yes >= no and yes > 0


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantityVote:
    quantity: Quantity
    value: Value | None  # the vote's value, None when no source votes
    voters: tuple[str, ...]
    unsafe: bool
    reason: str = ""
    pending: tuple[str, ...] = ()  # single claims still waiting for confirmation


@dataclass(frozen=True)
class SourceVerdict:
    source: str
    measures: tuple[Quantity, ...]
    values: Mapping[Quantity, Value]
    last_at: datetime | None
    age_s: float | None
    weight: float
    fresh: bool
    suspect: bool
    excluded: bool
    safe: bool | None  # this source's own verdict; None when it does not vote
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    at: datetime
    safe: bool  # what is published: safe now and, after an unsafe spell, for reopen_after_s
    safe_now: bool
    sky: Sky
    reason: str
    quantities: tuple[QuantityVote, ...]
    sources: tuple[SourceVerdict, ...]
    reopen_at: datetime | None = None  # when safe_now holds but the reopening wait runs

    def key(self) -> tuple[bool, str, str]:
        """What a change of conditions means: safe, sky, reason."""
        return (self.safe, self.sky, self.reason)


# --- the vote ------------------------------------------------------------------------------


@dataclass
class _Source:
    name: str
    values: dict[Quantity, Value] = field(default_factory=dict)
    at: dict[Quantity, datetime] = field(default_factory=dict)
    claim_since: dict[Quantity, datetime] = field(default_factory=dict)  # current run of unsafe readings
    differs_since: dict[Quantity, datetime] = field(default_factory=dict)
    suspect: str = ""
    excluded: bool = False


@dataclass(frozen=True)
class VoteMemory:
    """What the vote must remember across a restart (small: kept in the database)."""

    ever_safe: bool = False
    last_unsafe_at: datetime | None = None
    excluded: tuple[str, ...] = ()


class WeatherVote:
    """The vote of one site. ``observe`` readings, then ``evaluate(now)``; both pure and cheap."""

    def __init__(self, config: VoteConfig | None = None, memory: VoteMemory | None = None) -> None:
        self.config = config or VoteConfig()
        self._sources: dict[str, _Source] = {}
        mem = memory or VoteMemory()
        self._ever_safe = mem.ever_safe
        self._last_unsafe_at = mem.last_unsafe_at
        self._seen_any = False
        for name in mem.excluded:
            self._source(name).excluded = True

    def _source(self, name: str) -> _Source:
        s = self._sources.get(name)
        if s is None:
            s = self._sources[name] = _Source(name)
        return s

    @property
    def memory(self) -> VoteMemory:
        return VoteMemory(
            ever_safe=self._ever_safe,
            last_unsafe_at=self._last_unsafe_at,
            excluded=tuple(sorted(n for n, s in self._sources.items() if s.excluded)),
        )

    def sources(self) -> list[str]:
        return sorted(self._sources)

    def observe(self, source: str, at: datetime, values: Mapping[Quantity, Value]) -> bool:
        """A source's readings at ``at`` (an older reading than the last one is ignored).

        True when the verdict may change at once: a new source or quantity, an unsafe claim
        that starts or ends. (Other changes of value reach the verdict at the next evaluation.)
        """
        s = self._source(source)
        limits = self.config.limits
        news = False
        for q, v in values.items():
            last = s.at.get(q)
            if last is not None and at < last:
                continue
            if last is None or (at - last).total_seconds() > self.config.max_age_s:  # back from silence
                news = True
            s.values[q] = v
            s.at[q] = at
            if limits.unsafe(q, v) is None:
                if s.claim_since.pop(q, None) is not None:  # (not short-circuited: the claim ends)
                    news = True
            elif q not in s.claim_since:
                s.claim_since[q] = at
                news = True
        if values and not self._seen_any:
            self._seen_any = news = True
        return news

    def exclude(self, source: str, excluded: bool = True) -> None:
        """An operator takes a source out of the vote (or puts it back)."""
        s = self._source(source)
        s.excluded = excluded
        if not excluded:
            s.suspect = ""
            s.differs_since.clear()

    def _weight(self, s: _Source, q: Quantity, now: datetime) -> float:
        at = s.at.get(q)
        if at is None:
            return 0.0
        age = (now - at).total_seconds()
        m = self.config.max_age_s
        if age > m:
            return 0.0
        return 1.0 if m == 0 else max(1e-6, 1.0 - max(0.0, age) / m)

    def _check_suspects(self, now: datetime) -> None:
        """Compare each source with the consensus (weighted median or majority) of the voting
        sources and itself; a judgement needs three sources at least."""
        cfg, limits = self.config, self.config.limits
        for q in QUANTITIES:
            fresh = {n: s for n, s in self._sources.items() if not s.excluded and self._weight(s, q, now) > 0}
            for name, s in fresh.items():
                pool = [
                    (o.values[q], self._weight(o, q, now))
                    for n, o in fresh.items()
                    if n == name or not o.suspect
                ]
                if len(pool) < 3:
                    s.differs_since.pop(q, None)
                    continue
                mine = s.values[q]
                if q == "rain":
                    consensus: Value = weighted_majority((bool(v), w) for v, w in pool)
                    differs = bool(mine) != consensus
                    what = (
                        f"rain {'yes' if mine else 'no'} while the others say {'yes' if consensus else 'no'}"
                    )
                else:
                    consensus = weighted_median((float(v), w) for v, w in pool)
                    tol = limits.tolerance.get(q, math.inf)
                    differs = abs(float(mine) - consensus) > tol
                    what = f"{q} {float(mine):.1f} while the others read {consensus:.1f} (± {tol:g})"
                if not differs:
                    s.differs_since.pop(q, None)
                    continue
                since = s.differs_since.setdefault(q, now)
                if (now - since).total_seconds() >= cfg.suspect_after_s and not s.suspect:
                    s.suspect = f"{what} for {(now - since).total_seconds():.0f} s"
        for s in self._sources.values():
            if s.suspect and not s.differs_since:
                s.suspect = ""  # it agrees again

    def evaluate(self, now: datetime) -> Verdict:
        """The verdict at ``now``."""
        cfg, limits = self.config, self.config.limits
        self._check_suspects(now)
        votes: list[QuantityVote] = []
        for q in QUANTITIES:
            voters = [
                (n, s)
                for n, s in sorted(self._sources.items())
                if not s.excluded and not s.suspect and self._weight(s, q, now) > 0
            ]
            if not voters:
                unsafe = q in cfg.required
                votes.append(QuantityVote(q, None, (), unsafe, f"no source measures {q}" if unsafe else ""))
                continue
            pairs = [(s.values[q], self._weight(s, q, now)) for _, s in voters]
            value: Value = (
                weighted_majority((bool(v), w) for v, w in pairs)
                if q == "rain"
                else weighted_median((float(v), w) for v, w in pairs)
            )
            claims = [(n, s) for n, s in voters if q in s.claim_since]
            confirmed = [n for n, s in claims if (now - s.claim_since[q]).total_seconds() >= cfg.confirm_s]
            pending = tuple(n for n, _ in claims if n not in confirmed)
            unsafe = len(claims) >= 2 or bool(confirmed)
            reason = ""
            if unsafe:
                worst = limits.unsafe(q, claims[0][1].values[q]) or q
                names = ", ".join(n for n, _ in claims)
                how = "two sources or more" if len(claims) >= 2 else f"confirmed for {cfg.confirm_s:g} s"
                reason = f"{worst} ({names}; {how})"
            votes.append(QuantityVote(q, value, tuple(n for n, _ in voters), unsafe, reason, pending))

        unsafe_reasons = [v.reason for v in votes if v.unsafe]
        if not self._seen_any:
            unsafe_reasons = ["no weather source has reported yet"]
        safe_now = not unsafe_reasons
        reopen_at: datetime | None = None
        if not safe_now:
            # An unsafe reading starts the reopening wait; so does losing the sources once open
            # (not the start-up, before every source has reported).
            claimed = any(v.unsafe and v.value is not None for v in votes)
            if claimed or self._ever_safe:
                self._last_unsafe_at = now
            safe = False
            reason = "; ".join(unsafe_reasons)
        elif self._last_unsafe_at is not None:
            reopen_at = self._last_unsafe_at + timedelta(seconds=cfg.reopen_after_s)
            safe = now >= reopen_at
            reason = (
                ""
                if safe
                else f"safe since {self._last_unsafe_at:%H:%M:%S}, reopening at {reopen_at:%H:%M:%S}"
            )
            if safe:
                reopen_at = None
        else:
            safe, reason = True, ""
        if safe:
            self._ever_safe = True
        clouds = next(v for v in votes if v.quantity == "clouds").value
        sky = limits.sky(None if clouds is None else float(clouds))
        return Verdict(
            at=now,
            safe=safe,
            safe_now=safe_now,
            sky=sky,
            reason=reason,
            quantities=tuple(votes),
            sources=tuple(self._source_verdict(s, now) for _, s in sorted(self._sources.items())),
            reopen_at=reopen_at,
        )

    def _source_verdict(self, s: _Source, now: datetime) -> SourceVerdict:
        measures = tuple(q for q in QUANTITIES if q in s.values)
        last = max(s.at.values(), default=None)
        weights = [self._weight(s, q, now) for q in measures]
        weight = max(weights, default=0.0)
        fresh = weight > 0
        voting = fresh and not s.excluded and not s.suspect
        reasons = [
            r for q in measures if voting and (r := self.config.limits.unsafe(q, s.values[q])) is not None
        ]
        why = s.suspect or ("excluded by an operator" if s.excluded else "")
        if not fresh:
            why = why or ("silent" if last is None else f"silent for {(now - last).total_seconds():.0f} s")
        return SourceVerdict(
            source=s.name,
            measures=measures,
            values=dict(s.values),
            last_at=last,
            age_s=None if last is None else (now - last).total_seconds(),
            weight=round(weight, 3),
            fresh=fresh,
            suspect=bool(s.suspect),
            excluded=s.excluded,
            safe=None if not voting else not reasons,
            reason=why or "; ".join(reasons),
        )
