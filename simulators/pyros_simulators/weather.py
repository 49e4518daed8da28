"""Simulated weather sources (station, PLC, cloud sensor) sharing one seeded, scripted sky.

``WeatherScenario`` evolves the true weather as a bounded random walk pulled back towards its
starting values (``revert`` per step, so a clear night stays clear: without it the wind wandered
past 15 m/s within hours), one step every ``step_s`` of clock time from ``start``, with scripted
overrides (rain from +1 h to +2 h...).
Each ``WeatherSource`` reads that truth through its own sensor noise, so several sources
mostly agree and monitoring can vote; a source can be made to fail or lie (fault injection).
Readings depend only on the seed and the time asked, never on how often they are read.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from pyros_common.clock import Clock

from pyros_simulators.base import SimulatedDevice, SimulatorError

Value = float | bool
QUANTITIES: tuple[str, ...] = ("wind_ms", "humidity_pct", "ambient_c", "sky_minus_ambient_c", "rain")

# quantity: (start, random-walk sigma per step, lower bound, upper bound, sensor noise sigma)
_WALK: dict[str, tuple[float, float, float, float, float]] = {
    "wind_ms": (4.0, 0.4, 0.0, 40.0, 0.3),
    "humidity_pct": (35.0, 1.0, 2.0, 100.0, 1.5),
    "ambient_c": (8.0, 0.05, -30.0, 40.0, 0.2),
    "sky_minus_ambient_c": (-30.0, 0.5, -45.0, 0.0, 0.8),  # clear sky is ~30 K colder than the air
}


@dataclass(frozen=True)
class ScriptedEvent:
    """From ``start_s`` to ``end_s`` after the scenario start, these quantities are forced."""

    start_s: float
    end_s: float
    values: Mapping[str, Value]

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown weather quantities {sorted(unknown)}; known: {list(QUANTITIES)}")
        if self.end_s <= self.start_s:
            raise ValueError("a scripted event must end after it starts")


@dataclass
class WeatherScenario:
    """The true weather: a seeded random walk from ``start`` plus scripted events."""

    start: datetime
    seed: int = 0
    step_s: float = 10.0
    events: Sequence[ScriptedEvent] = ()
    revert: float = 0.05  # fraction of the way back to the start value per step (0: a free walk)
    _states: list[dict[str, float]] = field(default_factory=list, init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("scenario start must be timezone-aware")
        self._rng = np.random.default_rng(self.seed)
        self._states = [{k: v[0] for k, v in _WALK.items()}]

    def _step(self, k: int) -> dict[str, float]:
        while len(self._states) <= k:
            prev = self._states[-1]
            nxt: dict[str, float] = {}
            for name, (mean, sigma, lo, hi, _) in _WALK.items():
                v = prev[name] + self.revert * (mean - prev[name]) + float(self._rng.normal(0.0, sigma))
                # reflect at the bounds so the walk stays physical without sticking to them
                if v < lo:
                    v = 2 * lo - v
                if v > hi:
                    v = 2 * hi - v
                nxt[name] = min(hi, max(lo, v))
            self._states.append(nxt)
        return self._states[k]

    def step_index(self, when: datetime) -> int:
        return max(0, math.floor((when - self.start).total_seconds() / self.step_s))

    def truth(self, when: datetime) -> dict[str, Value]:
        """The true weather at ``when`` (constant within one step)."""
        k = self.step_index(when)
        values: dict[str, Value] = dict(self._step(k))
        values["rain"] = False
        elapsed = (when - self.start).total_seconds()
        for ev in self.events:
            if ev.start_s <= elapsed < ev.end_s:
                values.update(ev.values)
        return values


def clear_night(start: datetime, seed: int = 0) -> WeatherScenario:
    """Calm, dry, clear."""
    return WeatherScenario(start=start, seed=seed)


def rain_after(
    start: datetime, after_s: float = 3600.0, for_s: float = 1800.0, seed: int = 0
) -> WeatherScenario:
    """Clear, then a rain shower with clouds and humid air, then clearing."""
    shower = ScriptedEvent(
        after_s, after_s + for_s, {"rain": True, "humidity_pct": 97.0, "sky_minus_ambient_c": -4.0}
    )
    return WeatherScenario(start=start, seed=seed, events=[shower])


@dataclass(frozen=True)
class SourceSpec:
    """One weather source: what it measures and how noisy it is (multiplies the default noise)."""

    name: str
    kind: Literal["weather", "plc"] = "weather"
    measures: tuple[str, ...] = QUANTITIES
    noise: float = 1.0


STATION = SourceSpec("weather", "weather", ("wind_ms", "humidity_pct", "ambient_c", "rain"))
PLC = SourceSpec("plc", "plc", ("wind_ms", "humidity_pct", "rain"), noise=2.0)
CLOUD_SENSOR = SourceSpec("cloud-sensor", "weather", ("sky_minus_ambient_c", "ambient_c", "rain"))


class WeatherSource(SimulatedDevice):
    """A sensor reading the scenario's truth with its own noise; ``read`` is what the gateway polls."""

    def __init__(self, clock: Clock, scenario: WeatherScenario, spec: SourceSpec) -> None:
        super().__init__(clock, spec.name)
        self.scenario = scenario
        self.spec = spec
        self._stream = zlib.crc32(spec.name.encode())  # stable across processes, unlike hash()
        self._lies: dict[str, Value] = {}

    def lie(self, **values: Value) -> None:
        """Fault injection: report these values whatever the truth (a stuck or broken sensor)."""
        unknown = set(values) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown weather quantities {sorted(unknown)}")
        self._lies.update(values)

    def clear_faults(self) -> None:
        super().clear_faults()
        self._lies.clear()

    def read(self) -> dict[str, Value]:
        """Current readings of the quantities this source measures."""
        self._begin()
        now = self.clock.now()
        truth = self.scenario.truth(now)
        rng = np.random.default_rng([self.scenario.seed, self._stream, self.scenario.step_index(now)])
        out: dict[str, Value] = {}
        for name in self.spec.measures:
            value = truth[name]
            if isinstance(value, float):
                _, _, lo, hi, sigma = _WALK[name]
                value = round(min(hi, max(lo, value + float(rng.normal(0.0, sigma * self.spec.noise)))), 2)
            out[name] = self._lies.get(name, value)
        if "sky_minus_ambient_c" in out and "ambient_c" in out:
            sky, amb = out["sky_minus_ambient_c"], out["ambient_c"]
            if not isinstance(sky, bool) and not isinstance(amb, bool):
                out["sky_temp_c"] = round(amb + sky, 2)
        return out


class PlcSource(WeatherSource):
    """The enclosure PLC: its weather sensors plus the mains, the UPS and the power outlets.

    On mains failure the UPS drains at ``ups_drain_pct_per_min`` of clock time; outlets are
    switched by ``set_power`` (the observatory turns a device offline with its outlet).
    """

    def __init__(
        self,
        clock: Clock,
        scenario: WeatherScenario,
        spec: SourceSpec = PLC,
        *,
        outlets: Sequence[str] = (),
        ups_drain_pct_per_min: float = 2.0,
    ) -> None:
        super().__init__(clock, scenario, spec)
        self.outlets: dict[str, bool] = dict.fromkeys(outlets, True)
        self.ups_drain_pct_per_min = ups_drain_pct_per_min
        self._mains_lost_at: float | None = None
        self._ups_at_loss = 100.0

    @property
    def mains(self) -> bool:
        return self._mains_lost_at is None

    @property
    def ups_charge_pct(self) -> float:
        if self._mains_lost_at is None:
            return self._ups_at_loss
        minutes = (self.clock.monotonic() - self._mains_lost_at) / 60.0
        return max(0.0, self._ups_at_loss - minutes * self.ups_drain_pct_per_min)

    def set_mains(self, on: bool) -> None:
        """Mains power lost (False) or back (True); the UPS recharges at once when it comes back."""
        if not on and self._mains_lost_at is None:
            self._mains_lost_at = self.clock.monotonic()
        elif on:
            self._mains_lost_at = None
            self._ups_at_loss = 100.0

    def set_power(self, outlet: str, on: bool) -> None:
        if outlet not in self.outlets:
            raise SimulatorError(f"no outlet {outlet!r} on {self.name}; it has {sorted(self.outlets)}")
        self.outlets[outlet] = on

    def read(self) -> dict[str, Value]:
        out = super().read()
        out["mains"] = self.mains
        out["ups_charge_pct"] = round(self.ups_charge_pct, 1)
        for outlet, on in self.outlets.items():
            out[f"power_{outlet}"] = on
        return out


def weather_sources(
    clock: Clock, scenario: WeatherScenario, specs: Sequence[SourceSpec] = (STATION, PLC, CLOUD_SENSOR)
) -> list[WeatherSource]:
    """One source per spec, all reading the same scenario."""
    if len({s.name for s in specs}) != len(specs):
        raise SimulatorError("weather source names must be distinct")
    return [
        PlcSource(clock, scenario, s) if s.kind == "plc" else WeatherSource(clock, scenario, s) for s in specs
    ]
